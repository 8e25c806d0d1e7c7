"""Exponential moving average of a model's weights, kept in a shadow copy used for evaluation."""
from __future__ import annotations

import copy

import torch
import torch.nn as nn


class EMA:
    """Shadow module whose float tensors track ``decay_t * shadow + (1 - decay_t) * model``.

    ``decay_t = min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so short runs are not
    dominated by the random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        src = model.state_dict()
        dst, floats, others = self.module.state_dict(), [], []
        for k, v in dst.items():
            (floats if v.is_floating_point() else others).append(k)
        if floats:
            torch._foreach_lerp_([dst[k] for k in floats], [src[k].detach() for k in floats], 1.0 - d)
        for k in others:
            dst[k].copy_(src[k])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.module.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor], updates: int) -> None:
        self.module.load_state_dict(state, strict=True)
        self.updates = updates
