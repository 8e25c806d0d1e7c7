"""Fixed-grid ODE solvers for ``dx/dt = v(x, t)`` from ``t0`` to ``t1``.

``velocity(x, t)`` takes ``x`` of shape ``(B, ...)`` and ``t`` of shape ``(B,)``. The solvers keep
the autograd graph (no ``no_grad`` inside), so a loss can backpropagate through K steps.
``euler`` with ``steps=1`` is exactly one model call; ``midpoint`` and ``heun`` cost two per step.
"""
from __future__ import annotations

from typing import Callable

import torch

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

METHODS = ("euler", "midpoint", "heun")
CALLS_PER_STEP = {"euler": 1, "midpoint": 2, "heun": 2}


def _full(t: float, x: torch.Tensor) -> torch.Tensor:
    return torch.full((x.shape[0],), t, dtype=x.dtype, device=x.device)


def euler_step(velocity: Velocity, x: torch.Tensor, t: float, h: float) -> torch.Tensor:
    return x + h * velocity(x, _full(t, x))


def midpoint_step(velocity: Velocity, x: torch.Tensor, t: float, h: float) -> torch.Tensor:
    x_mid = x + 0.5 * h * velocity(x, _full(t, x))
    return x + h * velocity(x_mid, _full(t + 0.5 * h, x))


def heun_step(velocity: Velocity, x: torch.Tensor, t: float, h: float) -> torch.Tensor:
    k1 = velocity(x, _full(t, x))
    k2 = velocity(x + h * k1, _full(t + h, x))
    return x + 0.5 * h * (k1 + k2)


_STEPS = {"euler": euler_step, "midpoint": midpoint_step, "heun": heun_step}


def solve(velocity: Velocity, x0: torch.Tensor, steps: int = 1, method: str = "euler",
          t0: float = 0.0, t1: float = 1.0, return_path: bool = False):
    """Integrate ``velocity`` from ``x0`` at ``t0`` to ``t1`` on a uniform grid.

    Args:
        velocity: callable ``(x (B, ...), t (B,)) -> (B, ...)``.
        x0: state at ``t0``, ``(B, ...)``.
        steps: number of grid intervals (>= 1).
        method: ``euler`` | ``midpoint`` | ``heun``.
        return_path: also return the list of ``steps + 1`` states on the grid.
    Returns:
        the state at ``t1`` (and the path when ``return_path``).
    """
    if method not in _STEPS:
        raise ValueError(f"unknown solver method {method!r}; expected one of {list(METHODS)}")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"solver steps must be a positive integer, got {steps!r}")
    step = _STEPS[method]
    h = (t1 - t0) / steps
    x = x0
    path = [x0] if return_path else None
    for i in range(int(steps)):
        x = step(velocity, x, t0 + i * h, h)
        if return_path:
            path.append(x)
    return (x, path) if return_path else x
