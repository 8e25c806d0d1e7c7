"""Normalisation statistics that live inside the model weights (buffers, saved with them)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn


class Normalizer(nn.Module):
    """Per-key affine normalisation ``x_n = (x - offset) / scale``.

    ``minmax`` maps the data range to [-1, 1]; ``meanstd`` standardises. Constant dimensions get
    scale 1 so they pass through unchanged. The buffers are created at construction (from the
    dims) so that strict loading checks them like any weight; :meth:`fit` fills them.
    """

    def __init__(self, dims: dict[str, int], modes: dict[str, str] | None = None, eps: float = 1e-4):
        super().__init__()
        self.keys = list(dims)
        self.modes = {k: (modes or {}).get(k, "minmax") for k in self.keys}
        for k, m in self.modes.items():
            if m not in ("minmax", "meanstd"):
                raise ValueError(f"normaliser mode for {k!r} must be minmax or meanstd, got {m!r}")
        self.eps = eps
        for k, d in dims.items():
            self.register_buffer(f"{k}_offset", torch.zeros(d))
            self.register_buffer(f"{k}_scale", torch.ones(d))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    @torch.no_grad()
    def fit(self, data: dict[str, np.ndarray | torch.Tensor]) -> None:
        """``data[key]``: ``(N, D)`` samples of that key."""
        for k in self.keys:
            x = torch.as_tensor(np.asarray(data[k]), dtype=torch.float64).reshape(-1, getattr(self, f"{k}_offset").numel())
            if self.modes[k] == "minmax":
                lo, hi = x.min(0).values, x.max(0).values
                offset, scale = (hi + lo) / 2, (hi - lo) / 2
            else:
                offset, scale = x.mean(0), x.std(0)
            scale = torch.where(scale < self.eps, torch.ones_like(scale), scale)
            getattr(self, f"{k}_offset").copy_(offset)
            getattr(self, f"{k}_scale").copy_(scale)
        self.fitted.fill_(True)

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return (x - getattr(self, f"{key}_offset")) / getattr(self, f"{key}_scale")

    def unnormalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return x * getattr(self, f"{key}_scale") + getattr(self, f"{key}_offset")
