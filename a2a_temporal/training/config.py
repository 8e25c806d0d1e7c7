"""Training-loop settings shared by every head."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class TrainConfig:
    """Iteration-based schedule; ``batch_size`` is per process (as in accelerate)."""

    iterations: int = 2000  # optimiser updates (one batch each)
    batch_size: int = 64
    lr: float = 1e-4
    betas: tuple[float, float] = (0.95, 0.999)
    weight_decay: float = 1e-6
    warmup_iterations: int = 100
    grad_clip: float = 1.0  # 0 disables clipping
    ema_decay: float = 0.999  # 0 disables EMA
    seed: int = 0
    log_every: int = 50
    save_every: int = 0  # 0: save only at the end
    eval_every: int = 0  # 0: evaluate only at the end (if the tool has an evaluation)
    eval_at_start: bool = False  # also evaluate before the first iteration (step 0 of a learning curve)
    keep_last: int = 2  # step checkpoints kept besides the one `best` points to
    num_workers: int = 0
    mixed_precision: str = "no"  # no | fp16 | bf16 (accelerate)
    threads: int = 0  # torch.set_num_threads; 0 leaves torch's default
    resume: bool = False  # continue from OUTPUT_DIR/checkpoints/last
    # Resume even though the run's config differs from the one it started with (objective,
    # learning rate, data, ...); without it such a resume is refused with the differing keys.
    force_resume: bool = False
    stop_after: int = 0  # stop (checkpointed) after this iteration, schedule unchanged; 0: run to `iterations`
    best_metric: Optional[str] = None  # eval metric that selects `best` (higher is better)
    ddp_find_unused_parameters: bool = False  # for models that skip some parameters in a step

    def __post_init__(self) -> None:
        for name in ("iterations", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_iterations", "log_every", "save_every", "eval_every", "num_workers", "threads",
                     "stop_after"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"train.ema_decay must lie in [0, 1), got {self.ema_decay}")
        if self.keep_last < 1:
            raise ValueError(f"train.keep_last must be >= 1, got {self.keep_last}")
        if self.mixed_precision is False or self.mixed_precision == "False":
            self.mixed_precision = "no"  # YAML reads a bare `no` (file or --train.mixed_precision=no) as false
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise ValueError(f"train.mixed_precision={self.mixed_precision!r} is not one of no, fp16, bf16")
