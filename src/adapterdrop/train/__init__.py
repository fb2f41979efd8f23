"""Training with PyTorch Lightning: standard, specialized, dynamic and robust AdapterDrop."""

from adapterdrop.train.module import AdapterDropModule

__all__ = ["AdapterDropModule"]
