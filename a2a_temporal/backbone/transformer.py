"""The shared transformer: DiT-style blocks with adaLN-Zero time conditioning.

``FlowTransformer(x (B, N, D), t (B,), cond (B, M, Dc) | None) -> (B, N, D)``

The x tokens and the condition tokens are concatenated and attend to each other jointly in every
block; the time embedding (plus, optionally, a pooled summary of the condition) modulates every
block through adaLN. The modulation layers and the output layer start at zero, so every block is
the identity and the whole network outputs zeros at initialisation.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..pretrained import PretrainedMixin, register_model

PRESETS = {
    # name: (width, depth, heads)
    "tiny": (128, 2, 4),
    "small": (256, 4, 4),
    "base": (384, 6, 6),
}


@dataclass
class TransformerConfig:
    """Backbone size and token dimensions. ``preset`` fills width/depth/heads when they are 0."""

    in_dim: int = 64  # D: dimension of the x tokens (also the output)
    cond_dim: Optional[int] = None  # Dc: dimension of the condition tokens (None: same as in_dim)
    preset: str = "small"
    width: int = 0
    depth: int = 0
    heads: int = 0
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    max_tokens: int = 1024  # longest x or cond sequence (sin-cos position table)
    pool_cond_into_time: bool = True  # add mean-pooled condition to the adaLN vector (as A2A)

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"backbone.preset={self.preset!r} is not one of {sorted(PRESETS)}")
        w, d, h = PRESETS[self.preset]
        self.width = self.width or w
        self.depth = self.depth or d
        self.heads = self.heads or h
        if self.width % self.heads:
            raise ValueError(f"backbone.width={self.width} is not divisible by backbone.heads={self.heads}")
        if self.in_dim < 1:
            raise ValueError(f"backbone.in_dim must be >= 1, got {self.in_dim}")


def sincos_table(n: int, dim: int) -> torch.Tensor:
    """1-D sin-cos positions, ``(n, dim)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
    ang = torch.arange(n, dtype=torch.float64)[:, None] * freqs[None]
    table = torch.cat([torch.sin(ang), torch.cos(ang)], dim=1)
    if dim % 2:
        table = F.pad(table, (0, 1))
    return table.float()


class TimeEmbedding(nn.Module):
    """``t (B,)`` in [0, 1] -> ``(B, W)``: sinusoidal features of ``1000 t`` then an MLP."""

    def __init__(self, width: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))
        half = freq_dim // 2
        self.register_buffer("freqs", torch.exp(-math.log(10000.0) * torch.arange(half) / half),
                             persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        ang = 1000.0 * t.float()[:, None] * self.freqs[None]  # (B, F/2)
        emb = torch.cat([torch.cos(ang), torch.sin(ang)], dim=-1)  # (B, F)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))  # (B, W)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class Attention(nn.Module):
    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.dropout = dropout
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, L, _ = h.shape
        # (B, L, 3W) -> three (B, heads, L, W / heads) views; plain view/permute (the einops
        # rearrange it replaces did the same moves with more Python per call).
        q, k, v = self.qkv(h).view(B, L, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        o = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.proj(o.transpose(1, 2).reshape(B, L, -1))  # (B, L, W)


class Block(nn.Module):
    """Pre-norm transformer block; adaLN-Zero gates make it the identity at initialisation."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, dropout: float):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, heads, dropout)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"),
                                 nn.Dropout(dropout), nn.Linear(hidden, width))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(c).chunk(6, dim=-1)  # each (B, W)
        h = h + g1[:, None] * self.attn(modulate(self.norm1(h), sh1, sc1))  # (B, L, W)
        h = h + g2[:, None] * self.mlp(modulate(self.norm2(h), sh2, sc2))  # (B, L, W)
        return h


@register_model("flow_transformer")
class FlowTransformer(PretrainedMixin, nn.Module):
    """Velocity network shared by every head. See the module docstring for shapes."""

    config_class = TransformerConfig

    def __init__(self, config: TransformerConfig):
        super().__init__()
        self.config = config
        c = config
        cond_dim = c.cond_dim or c.in_dim
        self.x_in = nn.Linear(c.in_dim, c.width)
        self.cond_in = nn.Linear(cond_dim, c.width)
        self.cond_type = nn.Parameter(torch.zeros(c.width))  # tells condition tokens apart
        self.time = TimeEmbedding(c.width)
        self.cond_pool = nn.Linear(c.width, c.width) if c.pool_cond_into_time else None
        self.blocks = nn.ModuleList(Block(c.width, c.heads, c.mlp_ratio, c.dropout) for _ in range(c.depth))
        self.norm_out = nn.LayerNorm(c.width, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Sequential(nn.SiLU(), nn.Linear(c.width, 2 * c.width))
        self.out = nn.Linear(c.width, c.in_dim)
        self.register_buffer("pos", sincos_table(c.max_tokens, c.width), persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier for every linear layer *first*, then zero the adaLN and output layers.

        The zeroing must come last: a later generic init would silently undo adaLN-Zero.
        """
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.time.mlp[0].weight, std=0.02)
        nn.init.normal_(self.time.mlp[2].weight, std=0.02)
        nn.init.normal_(self.cond_type, std=0.02)
        for blk in self.blocks:
            nn.init.zeros_(blk.ada[-1].weight)
            nn.init.zeros_(blk.ada[-1].bias)
        for layer in (self.ada_out[-1], self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, N, D), t: (B,), cond: (B, M, Dc) or None -> velocity (B, N, D)."""
        B, N, _ = x.shape
        if t.shape != (B,):
            raise ValueError(f"t must have shape (B,) = ({B},), got {tuple(t.shape)}")
        dtype = self.x_in.weight.dtype
        if N > self.config.max_tokens:
            raise ValueError(f"{N} x tokens exceed backbone.max_tokens={self.config.max_tokens}")
        h = self.x_in(x.to(dtype)) + self.pos[:N].to(dtype)  # (B, N, W)
        c = self.time(t)  # (B, W)
        if cond is not None:
            M = cond.shape[1]
            if M > self.config.max_tokens:
                raise ValueError(f"{M} condition tokens exceed backbone.max_tokens={self.config.max_tokens}")
            hc = self.cond_in(cond.to(dtype)) + self.pos[:M].to(dtype) + self.cond_type  # (B, M, W)
            if self.cond_pool is not None:
                c = c + self.cond_pool(hc.mean(dim=1))  # (B, W)
            h = torch.cat([h, hc], dim=1)  # (B, N + M, W)
        return self.trunk(h, c, N).to(x.dtype)  # (B, N, D)

    def trunk(self, h: torch.Tensor, c: torch.Tensor, n: int) -> torch.Tensor:
        """Blocks and output layer on embedded tokens: ``h (B, n + M, W)`` (the ``n`` x tokens
        first, then the condition tokens), ``c (B, W)`` the adaLN vector -> ``(B, n, D)``.

        ``forward`` is embedding + ``trunk``; inference paths that embed the tokens themselves
        (with cached time embeddings, see heads.action.modeling.InferencePlan) call it directly.
        """
        for blk in self.blocks:
            h = blk(h, c)  # (B, n + M, W)
        shift, scale = self.ada_out(c).chunk(2, dim=-1)  # (B, W) each
        h = modulate(self.norm_out(h[:, :n]), shift, scale)  # (B, n, W)
        return self.out(h)  # (B, n, D)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
