"""Training with PyTorch Lightning: standard, specialized, dynamic and robust AdapterDrop."""

from adapterdrop.train.module import DROP_MODES, AdapterDropModule, DropConfig, OptimConfig
from adapterdrop.train.robust import RobustDropSampler

__all__ = ["DROP_MODES", "AdapterDropModule", "DropConfig", "OptimConfig", "RobustDropSampler"]
