"""Adapter methods, one module each, behind ``registry.build_method``."""

from adapterdrop.methods.registry import build_method, method_names, register

__all__ = ["build_method", "method_names", "register"]
