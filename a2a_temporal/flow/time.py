"""Samplers for the training time ``t`` in [0, 1] (``t = 0`` is the source).

Each sampler is called as ``sampler(batch, device) -> (B,)`` and draws from torch's global RNG,
which the trainer seeds and checkpoints (so resumed runs draw the same times).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class UniformTime:
    """``t ~ U(0, 1)``."""

    def __call__(self, batch: int, device=None) -> torch.Tensor:
        return torch.rand(batch, device=device)


@dataclass
class LogitNormalTime:
    """``t = sigmoid(n)``, ``n ~ N(mean, std^2)``: more weight mid-path (as in SD3)."""

    mean: float = 0.0
    std: float = 1.0

    def __call__(self, batch: int, device=None) -> torch.Tensor:
        return torch.sigmoid(self.mean + self.std * torch.randn(batch, device=device))


@dataclass
class BetaTime:
    """``t ~ Beta(a, b)``; ``a < b`` favours the source end."""

    a: float = 1.0
    b: float = 1.5

    def __post_init__(self) -> None:
        if self.a <= 0 or self.b <= 0:
            raise ValueError(f"Beta time sampler needs a > 0 and b > 0, got a={self.a}, b={self.b}")

    def __call__(self, batch: int, device=None) -> torch.Tensor:
        conc = torch.tensor([self.a, self.b], device=device, dtype=torch.float32)
        return torch.distributions.Beta(conc[0], conc[1]).sample((batch,))


@dataclass
class SourceMixTime:
    """``t = 0`` (the source) with probability ``p``, otherwise a draw from ``base``.

    One-step sampling reads the velocity only at ``t = 0``; this gives that point a fixed share of
    the batch while the rest of the path stays trained (``p = 1`` is the residual regression).
    """

    base: object
    p: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"source time probability must be in [0, 1], got {self.p}")

    def __call__(self, batch: int, device=None) -> torch.Tensor:
        t = self.base(batch, device)
        if self.p <= 0.0:
            return t  # no extra draw: p = 0 leaves the random stream as the base sampler alone
        return torch.where(torch.rand(batch, device=device) < self.p, torch.zeros_like(t), t)


TIME_SAMPLERS = {"uniform": UniformTime, "logit_normal": LogitNormalTime, "beta": BetaTime}


def build_time_sampler(name: str, **kwargs):
    """Build a time sampler by name: ``uniform``, ``logit_normal`` or ``beta``."""
    if name not in TIME_SAMPLERS:
        raise ValueError(f"unknown time sampler {name!r}; expected one of {sorted(TIME_SAMPLERS)}")
    return TIME_SAMPLERS[name](**kwargs)
