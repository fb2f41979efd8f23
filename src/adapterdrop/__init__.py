"""adapterdrop: reproduce and benchmark the efficiency of adapters in transformers."""

from adapterdrop.config import register_resolvers

__version__ = "0.1.0"

register_resolvers()  # the ${adapterdrop.*} interpolations of conf/
