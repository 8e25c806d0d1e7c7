"""A small diffusers AutoencoderKL trained from scratch on our own frames.

Frames enter as uint8 ``(B, H, W, 3)``; latents leave as ``(B, C, H/4, W/4)`` multiplied by
``scaling_factor`` (computed from data after training so latents have unit standard deviation,
and stored in the config).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...errors import DataError
from ...pretrained import PretrainedMixin, register_model


@dataclass
class VAEConfig:
    image_size: int = 64
    latent_channels: int = 4
    block_out_channels: tuple[int, ...] = (32, 64, 64)  # len - 1 downsamplings: 64 px -> 16 x 16
    layers_per_block: int = 1
    norm_num_groups: int = 16
    mid_attention: bool = False  # self-attention in the bottleneck (costly on a CPU)
    kl_weight: float = 1e-6
    scaling_factor: float = 1.0  # set from data by tools/train_vae.py

    def __post_init__(self) -> None:
        self.block_out_channels = tuple(self.block_out_channels)
        if any(c % self.norm_num_groups for c in self.block_out_channels):
            raise ValueError(f"vae.block_out_channels {self.block_out_channels} must be divisible by "
                             f"vae.norm_num_groups={self.norm_num_groups}")
        if self.image_size % self.downsample:
            raise ValueError(f"vae.image_size={self.image_size} must be divisible by {self.downsample}")

    @property
    def downsample(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        s = self.image_size // self.downsample
        return (self.latent_channels, s, s)


def frames_to_tensor(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` -> float ``(B, 3, H, W)`` in [-1, 1]."""
    return frames.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def tensor_to_frames(x: torch.Tensor) -> torch.Tensor:
    """float ``(B, 3, H, W)`` in [-1, 1] -> uint8 ``(B, H, W, 3)``."""
    return x.clamp(-1, 1).add(1.0).mul(127.5).round().byte().permute(0, 2, 3, 1)


@register_model("video_vae")
class VideoVAE(PretrainedMixin, nn.Module):
    """``forward(batch) -> (loss, info)`` with ``batch["frames"]`` uint8 ``(B, H, W, 3)``."""

    config_class = VAEConfig

    def __init__(self, config: VAEConfig):
        super().__init__()
        from diffusers import AutoencoderKL

        self.config = config
        n = len(config.block_out_channels)
        self.vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * n,
                                 up_block_types=("UpDecoderBlock2D",) * n,
                                 block_out_channels=config.block_out_channels, latent_channels=config.latent_channels,
                                 layers_per_block=config.layers_per_block, norm_num_groups=config.norm_num_groups,
                                 sample_size=config.image_size, scaling_factor=config.scaling_factor,
                                 mid_block_add_attention=config.mid_attention)

    def check_frames(self, frames: torch.Tensor, source: str = "frames") -> None:
        s = self.config.image_size
        if frames.ndim != 4 or tuple(frames.shape[1:]) != (s, s, 3):
            raise DataError(f"{source}: frames of shape {tuple(frames.shape[1:])} but the VAE was trained on "
                            f"{s}x{s} RGB frames")

    def forward(self, batch: dict):
        x = frames_to_tensor(batch["frames"])  # (B, 3, H, W)
        post = self.vae.encode(x).latent_dist
        rec = self.vae.decode(post.sample()).sample
        rec_loss = F.l1_loss(rec, x) + F.mse_loss(rec, x)
        kl = post.kl().mean() / x[0].numel()
        loss = rec_loss + self.config.kl_weight * kl
        with torch.no_grad():
            mse = F.mse_loss(rec.clamp(-1, 1), x, reduction="none").mean(dim=(1, 2, 3)) / 4.0  # [0, 1] range
            psnr = (10 * torch.log10(1.0 / mse.clamp_min(1e-10))).mean()
        return loss, {"loss_rec": rec_loss.detach(), "kl": kl.detach(), "psnr": psnr}

    @torch.no_grad()
    def encode(self, frames: torch.Tensor, source: str = "frames", sample: bool = False) -> torch.Tensor:
        """uint8 ``(B, H, W, 3)`` -> scaled latents ``(B, C, h, w)`` (posterior mean by default)."""
        self.check_frames(frames, source)
        dist = self.vae.encode(frames_to_tensor(frames.to(self.device))).latent_dist
        z = dist.sample() if sample else dist.mean
        return z * self.config.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents ``(B, C, h, w)`` -> uint8 frames ``(B, H, W, 3)``."""
        return tensor_to_frames(self.vae.decode(latents / self.config.scaling_factor).sample)

    def decode_float(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> float frames in [-1, 1], differentiable."""
        return self.vae.decode(latents / self.config.scaling_factor).sample

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @torch.no_grad()
    def fit_scaling_factor(self, frames: torch.Tensor, batch_size: int = 64) -> float:
        """Set ``scaling_factor = 1 / std`` of the unscaled posterior means over ``frames``."""
        zs = [self.vae.encode(frames_to_tensor(frames[i:i + batch_size].to(self.device))).latent_dist.mean
              for i in range(0, frames.shape[0], batch_size)]
        std = torch.cat(zs).std().item()
        self.config.scaling_factor = 1.0 / max(std, 1e-6)
        self.vae.register_to_config(scaling_factor=self.config.scaling_factor)
        return self.config.scaling_factor
