"""Adapter methods, one module (or package) each, behind ``registry.build_method``.

Methods depend on ``adapterdrop.core`` only (and on each other where one builds on another:
fusion and CoDA reuse bottleneck pieces; and on ``adapterdrop.checks``, the leaf value checks);
the engine never imports them. Each method class is
a ``core.Method`` registered by name; its modules are ``core.SiteModule`` or
``core.LayerModule`` types the engine runs without knowing which method made them.
"""

from adapterdrop.methods.registry import build_method, method_names, register, unregister

__all__ = ["build_method", "method_names", "register", "unregister"]
