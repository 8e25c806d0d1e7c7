"""One training loop for every head (HF accelerate, EMA, atomic checkpoints, resume)."""
from .checkpoint import resolve_pretrained
from .config import TrainConfig
from .trainer import Trainer, seed_init

__all__ = ["TrainConfig", "Trainer", "resolve_pretrained", "seed_init"]
