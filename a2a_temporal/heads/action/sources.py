"""Flow sources of the action head beside A2A's own: one module per idea, one interface.

Every source maps the normalised history ``h (B, Th, Dh)`` (joint positions, then the previous
actions in the last ``A`` columns; padded actions are zero) to a flow start ``x0`` shaped like
the target: ``(B, L, Dz)`` chunk latents or ``(B, H, A)`` normalised actions. ``policy.source``
selects one; A2A's own MLP embedding (``history_mlp``) stays in :class:`ActionFlowPolicy` itself
(its ``source_encoder``), so existing checkpoints load unchanged. Random draws use torch's
global generator, as the objectives do (seeded runs are reproducible).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .encoders import TokenMLP

SOURCES = ("history_mlp", "legendre", "last_action_gaussian", "adaptive_mix")
# Sources that start from an action, so the flow runs in action space (``policy.flow_space=action``).
ACTION_SPACE_SOURCES = ("last_action_gaussian",)


def legendre_basis(n: int, degree: int) -> torch.Tensor:
    """Legendre polynomials P_0..P_degree at ``n`` evenly spaced points of [-1, 1]: ``(n, degree+1)``."""
    x = torch.linspace(-1.0, 1.0, n, dtype=torch.float64) if n > 1 else torch.zeros(1, dtype=torch.float64)
    cols = [torch.ones_like(x), x]
    for k in range(1, degree):  # Bonnet: (k+1) P_{k+1} = (2k+1) x P_k - k P_{k-1}
        cols.append(((2 * k + 1) * x * cols[k] - k * cols[k - 1]) / (k + 1))
    return torch.stack(cols[:degree + 1], dim=1)


class LegendreSource(nn.Module):
    """After FLASH: the history summarised by its Legendre coefficients, mapped to the chunk.

    The coefficients ``c (B, degree+1, Dh)`` are the least-squares fit of each history channel
    by Legendre polynomials over the ``Th`` past steps (a fixed linear map: the basis's
    pseudo-inverse, a buffer). Latent space: an MLP maps the flattened coefficients to the
    latent tokens. Action space: a linear map from the coefficients of the action channels to
    the ``H`` future actions, initialised to hold the fitted value at the last past step (a
    constant extrapolation that training then bends). Differs from FLASH: the coefficients feed
    our shared flow backbone rather than FLASH's own network, and the degree is a setting.
    """

    def __init__(self, n_hist: int, hist_dim: int, degree: int, target_shape: tuple[int, int], action_dim: int,
                 hidden: int, layers: int, latent: bool):
        super().__init__()
        degree = min(degree, n_hist - 1)
        basis = legendre_basis(n_hist, degree)  # (Th, P)
        self.register_buffer("pinv", torch.linalg.pinv(basis).float(), persistent=False)  # (P, Th)
        self.latent, self.action_dim, self.target_shape = latent, action_dim, target_shape
        P = degree + 1
        if latent:
            self.net = TokenMLP(P * hist_dim, hidden, target_shape[0], target_shape[1], layers=layers)
        else:
            H = target_shape[0]
            self.map = nn.Linear(P, H)  # per action channel: coefficients -> H future values
            with torch.no_grad():
                self.map.weight.copy_(basis[-1].float().expand(H, P))  # value of the fit at the last step
                self.map.bias.zero_()

    def coefficients(self, history: torch.Tensor) -> torch.Tensor:
        """``(B, Th, Dh)`` -> least-squares Legendre coefficients ``(B, P, Dh)``."""
        return torch.einsum("pt,btd->bpd", self.pinv, history)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        c = self.coefficients(history)  # (B, P, Dh)
        if self.latent:
            return self.net(c)  # (B, L, Dz)
        ca = c[..., -self.action_dim:]  # (B, P, A): the previous-action channels
        return self.map(ca.transpose(1, 2)).transpose(1, 2)  # (B, H, A)


class LastActionGaussianSource(nn.Module):
    """After Streaming Flow Policy: a narrow Gaussian around the last executed action.

    ``x0 = repeat(a_last, H) + sigma * eps`` in normalised action space (zero action before
    the first one). Differs from SFP: SFP streams actions along one flow trajectory in time;
    here the flow produces a whole chunk from that start, as every other source does.
    """

    def __init__(self, horizon: int, action_dim: int, sigma: float):
        super().__init__()
        self.horizon, self.action_dim, self.sigma = horizon, action_dim, float(sigma)

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        last = history[:, -1:, -self.action_dim:]  # (B, 1, A)
        x0 = last.expand(-1, self.horizon, -1)  # (B, H, A)
        return x0 + self.sigma * torch.randn_like(x0) if self.sigma > 0 else x0.clone()


class AdaptiveMixSource(nn.Module):
    """After MARS: a learned per-dimension mix of the history embedding and noise.

    ``x0 = (1 - w) * e(h) + w * eps`` with ``e`` A2A's history embedding (latent space) or the
    previous actions (action space) and ``w = sigmoid(g(h))`` per target dimension from a small
    scheduling head, initialised near ``w_init``. Differs from MARS: no adaptive step count and
    no diversity loss; ``w`` is learned only through the flow loss.
    """

    def __init__(self, flat_hist_dim: int, target_shape: tuple[int, int], action_dim: int, hidden: int, layers: int,
                 latent: bool, w_init: float = 0.1):
        super().__init__()
        self.latent, self.action_dim, self.target_shape = latent, action_dim, target_shape
        L, D = target_shape
        if latent:
            self.embed = TokenMLP(flat_hist_dim, hidden, L, D, layers=layers)
        self.gate = TokenMLP(flat_hist_dim, hidden, L, D, layers=2, norm=False)
        with torch.no_grad():  # start near w_init everywhere
            last = self.gate.net[-1]
            last.weight.mul_(0.01)
            last.bias.fill_(math.log(w_init / (1 - w_init)))

    def weights(self, history: torch.Tensor) -> torch.Tensor:
        """Mix weights ``w`` in (0, 1), shaped like the target."""
        return torch.sigmoid(self.gate(history))

    def forward(self, history: torch.Tensor) -> torch.Tensor:
        if self.latent:
            e = self.embed(history)  # (B, L, Dz)
        else:
            e = history[:, -self.target_shape[0]:, -self.action_dim:]  # (B, H, A) previous actions
        w = self.weights(history)
        return (1 - w) * e + w * torch.randn_like(e)


def build_source(name: str, *, n_hist: int, hist_dim: int, target_shape: tuple[int, int], action_dim: int,
                 hidden: int, layers: int, latent: bool, legendre_degree: int, source_noise: float) -> nn.Module:
    """The source module for ``policy.source`` (not ``history_mlp``, which the policy owns)."""
    if name == "legendre":
        return LegendreSource(n_hist, hist_dim, legendre_degree, target_shape, action_dim, hidden, layers, latent)
    if name == "last_action_gaussian":
        if latent:
            raise ValueError("policy.source=last_action_gaussian starts from an action: it needs policy.flow_space=action")
        return LastActionGaussianSource(target_shape[0], action_dim, source_noise)
    if name == "adaptive_mix":
        return AdaptiveMixSource(n_hist * hist_dim, target_shape, action_dim, hidden, layers, latent)
    raise ValueError(f"policy.source={name!r} is not one of {list(SOURCES)}")
