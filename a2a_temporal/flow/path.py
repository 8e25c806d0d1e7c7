"""The straight source-to-target path.

Convention used everywhere in a2a_temporal: flow time ``t`` lies in [0, 1], ``t = 0`` is the
*source* (an embedding of the previous action chunk / previous frame, or Gaussian noise) and
``t = 1`` is the *target*. ``t`` always has shape ``(B,)``; the model predicts ``dx/dt``.

The path never draws noise itself: callers pass the source ``x0`` and, where a variant needs
it, the noise tensor. That is what lets the source be any embedding.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch


def expand_time(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Reshape ``t`` of shape ``(B,)`` so it broadcasts against ``like`` of shape ``(B, ...)``."""
    if t.ndim != 1 or t.shape[0] != like.shape[0]:
        raise ValueError(f"t must have shape (B,) = ({like.shape[0]},), got {tuple(t.shape)}")
    return t.reshape(-1, *([1] * (like.ndim - 1))).to(like.dtype)


@dataclass
class StraightPath:
    """Rectified (conditional-OT) path ``x_t = (1 - t) x0 + t x1``, target velocity ``x1 - x0``.

    Args:
        start_point_noise: standard deviation of Gaussian noise added to the flow's start point
            ``x0`` before the path is built (at training *and* inference). 0 gives the
            deterministic A2A path.
        bridge_sigma: amplitude of a stochastic-interpolant term ``bridge_sigma * t (1 - t) z``
            that vanishes at both ends; its time derivative ``bridge_sigma (1 - 2t) z`` is added
            to the target velocity so the ODE still transports x0 to x1.
    """

    start_point_noise: float = 0.0
    bridge_sigma: float = 0.0

    def __post_init__(self) -> None:
        if self.start_point_noise < 0 or self.bridge_sigma < 0:
            raise ValueError(
                f"path noise must be >= 0, got start_point_noise={self.start_point_noise}, "
                f"bridge_sigma={self.bridge_sigma}")

    def perturb_source(self, x0: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        """Return ``x0 + start_point_noise * noise`` (``noise`` ~ N(0, I) drawn when not given)."""
        if self.start_point_noise == 0.0:
            return x0
        if noise is None:
            noise = torch.randn_like(x0)
        return x0 + self.start_point_noise * noise

    def sample(self, x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor,
               noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Point on the path and its target velocity.

        Args:
            x0: source, ``(B, ...)``.  x1: target, same shape.  t: ``(B,)`` in [0, 1].
            noise: ``(B, ...)`` standard normal for the bridge term (drawn when needed and None).
        Returns:
            ``(x_t, u_t)``, both shaped like ``x0``.
        """
        if x0.shape != x1.shape:
            raise ValueError(f"source and target shapes differ: {tuple(x0.shape)} vs {tuple(x1.shape)}")
        tt = expand_time(t, x0)
        x_t = (1.0 - tt) * x0 + tt * x1
        u_t = x1 - x0
        if self.bridge_sigma > 0.0:
            if noise is None:
                noise = torch.randn_like(x0)
            x_t = x_t + self.bridge_sigma * tt * (1.0 - tt) * noise
            u_t = u_t + self.bridge_sigma * (1.0 - 2.0 * tt) * noise
        return x_t, u_t
