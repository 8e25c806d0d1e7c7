"""A 2-D dynamical-system toy: the next state is a known function of the previous one.

Sources are drawn from a multi-modal point cloud (Gaussian blobs on a ring); the dynamics rotate
each point by an angle that depends on its radius and add a drift. A model is trained to produce
the next state given the previous one, either by flowing *from* the previous state (``a2a``)
or from Gaussian noise (``flow``), with the previous state as the condition in both cases.
The model is the shared :class:`FlowTransformer` with one x token and one condition token.

With ``branch_offset > 0`` the next state is *bimodal*: the deterministic next state shifted by
``+branch_offset`` or ``-branch_offset`` along y with probability 1/2 each (go round an obstacle
on the left or on the right). Both modes are known exactly (:meth:`ToySystem.modes_of`), so
:func:`mode_fractions` can tell whether a sampler picks a mode or averages between them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
from torch.utils.data import Dataset

from .backbone import FlowTransformer, TransformerConfig
from .flow import ObjectiveConfig, build_objective
from .pretrained import PretrainedMixin, register_model


@dataclass
class ToySystem:
    """Point cloud and dynamics. Angles in radians."""

    modes: int = 6
    ring_radius: float = 2.0
    mode_std: float = 0.25
    base_angle: float = 0.35  # rotation at radius 0
    angle_per_radius: float = 0.15  # extra rotation per unit radius (shears the cloud)
    drift: tuple[float, float] = (0.3, -0.15)
    branch_offset: float = 0.0  # > 0: two equally likely next states, +-offset along y

    def modes_of(self, x: torch.Tensor) -> torch.Tensor:
        """The valid next states of ``x`` (..., 2): ``(..., 2 modes, 2)`` (identical if not bimodal)."""
        base = self.step(x)
        shift = torch.tensor([0.0, self.branch_offset], dtype=x.dtype)
        return torch.stack([base + shift, base - shift], dim=-2)

    def sample_source(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Previous states, ``(n, 2)``."""
        k = torch.randint(0, self.modes, (n,), generator=generator)
        ang = 2 * math.pi * k.float() / self.modes
        centres = self.ring_radius * torch.stack([torch.cos(ang), torch.sin(ang)], dim=1)
        return centres + self.mode_std * torch.randn(n, 2, generator=generator)

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """Exact next state of ``x`` (..., 2)."""
        r = x.norm(dim=-1, keepdim=True)
        a = self.base_angle + self.angle_per_radius * r
        c, s = torch.cos(a), torch.sin(a)
        xr = torch.cat([c * x[..., :1] - s * x[..., 1:], s * x[..., :1] + c * x[..., 1:]], dim=-1)
        return xr + torch.tensor(self.drift, dtype=x.dtype)


class ToyDataset(Dataset):
    """Fixed set of (previous, next) pairs as ``{"prev": (2,), "next": (2,)}``."""

    def __init__(self, system: ToySystem, n: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.prev = system.sample_source(n, g)
        modes = system.modes_of(self.prev)  # (n, 2, 2)
        pick = torch.randint(0, 2, (n,), generator=g)  # which branch each sample took
        self.next = modes[torch.arange(n), pick]

    def __len__(self) -> int:
        return self.prev.shape[0]

    def __getitem__(self, i: int) -> dict:
        return {"prev": self.prev[i], "next": self.next[i]}


@dataclass
class ToyModelConfig:
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    backbone: TransformerConfig = field(default_factory=lambda: TransformerConfig(in_dim=2, preset="tiny"))


@register_model("toy_flow")
class ToyFlowModel(PretrainedMixin, nn.Module):
    """``forward(batch) -> (loss, info)``; ``predict(prev, steps, method) -> next``."""

    config_class = ToyModelConfig

    def __init__(self, config: ToyModelConfig):
        super().__init__()
        if config.backbone.in_dim != 2 or (config.backbone.cond_dim or 2) != 2:
            raise ValueError("the toy uses 2-D tokens: backbone.in_dim and cond_dim must be 2")
        self.config = config
        self.net = FlowTransformer(config.backbone)
        self.objective = build_objective(config.objective)

    def forward(self, batch: dict):
        prev, nxt = batch["prev"][:, None], batch["next"][:, None]  # (B, 1, 2)
        return self.objective.loss(self.net, prev, nxt, cond=prev)

    @torch.no_grad()
    def predict(self, prev: torch.Tensor, steps: int | None = None, method: str | None = None) -> torch.Tensor:
        """prev: (B, 2) -> predicted next state (B, 2)."""
        x0 = prev[:, None]
        return self.objective.sample(self.net, x0, cond=x0, steps=steps, method=method)[:, 0]


def mode_fractions(pred: torch.Tensor, modes: torch.Tensor, radius: float) -> dict:
    """Where predictions land relative to two known modes.

    Args:
        pred: ``(N, 2)`` predicted next states.  modes: ``(N, 2, 2)`` the two valid next states.
        radius: a prediction within ``radius`` of a mode counts as that mode.
    Returns:
        fractions ``mode_a``, ``mode_b``, ``between`` (near neither, but inside the capsule of
        radius ``radius`` around the segment joining the modes: the averaged answer), ``other``.
    """
    d = (pred[:, None] - modes).norm(dim=-1)  # (N, 2)
    a, b = modes[:, 0], modes[:, 1]
    ab = b - a
    u = ((pred - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-12)
    seg = (pred - (a + u.clamp(0, 1)[:, None] * ab)).norm(dim=-1)  # distance to the segment
    near_a, near_b = d[:, 0] <= radius, d[:, 1] <= radius
    near_a, near_b = near_a & (d[:, 0] <= d[:, 1]), near_b & (d[:, 1] < d[:, 0])
    between = ~near_a & ~near_b & (seg <= radius)
    n = pred.shape[0]
    return {"mode_a": near_a.sum().item() / n, "mode_b": near_b.sum().item() / n,
            "between": between.sum().item() / n, "other": (~near_a & ~near_b & ~between).sum().item() / n}
