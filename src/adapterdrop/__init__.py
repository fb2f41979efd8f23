"""adapterdrop: reproduce and benchmark the efficiency of adapters in transformers."""

__version__ = "0.1.0"
