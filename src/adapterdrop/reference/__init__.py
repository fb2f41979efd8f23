"""Reference implementations our engine is checked against and benchmarked with."""

from adapterdrop.reference.adapterhub import (
    AdapterHubReference,
    AdapterSpec,
    adapter_spec,
    adapterhub_parallel_forward,
    adapterhub_single_forward,
    build_adapterhub_reference,
)

__all__ = [
    "AdapterHubReference",
    "AdapterSpec",
    "adapter_spec",
    "adapterhub_parallel_forward",
    "adapterhub_single_forward",
    "build_adapterhub_reference",
]
