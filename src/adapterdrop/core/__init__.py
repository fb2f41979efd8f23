"""The small core that methods and the engine share; it knows no method and no engine.

Layering (imports point one way only)::

    core  <-  methods (one module or package each, behind methods.registry)
    core  <-  engine (AdapterEncoder: the layer loop)
    engine, methods  <-  params, heads, train, bench, reference

``core`` says what a task's module may be and read: places in a layer (``Site``) and their
typed keys (``SiteKey``), the tensors at a site (``SiteInputs``, ``SiteBatch``), the module
types the engine runs (``SiteModule`` with its batched hook, ``LayerModule``), the HF sub-layers
both sides compute with, and what a method class declares (``Method``: ``apply`` and capability
flags) and may ask of an encoder (``Encoder``). The engine dispatches on these types only, so a
new method is one module under ``methods/`` and no edit elsewhere.
"""

from adapterdrop.core.method import Encoder, Method
from adapterdrop.core.modules import LayerModule, SiteModule
from adapterdrop.core.sites import Site, SiteBatch, SiteInputs, SiteKey
from adapterdrop.core.sublayers import attention_sublayer, ffn_sublayer, site_norm

__all__ = [
    "Encoder",
    "LayerModule",
    "Method",
    "Site",
    "SiteBatch",
    "SiteInputs",
    "SiteKey",
    "SiteModule",
    "attention_sublayer",
    "ffn_sublayer",
    "site_norm",
]
