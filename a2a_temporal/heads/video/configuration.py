"""Configuration of the latent next-frame predictor."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...backbone import TransformerConfig
from ...flow import ObjectiveConfig
from .vae import VAEConfig


@dataclass
class VideoFlowConfig:
    """Next-frame prediction in the latent space of a frozen :class:`VideoVAE` (stored inside).

    Tokens are ``patch x patch`` patches of the ``(C, h, w)`` latent. Source (a2a): the previous
    frame's latent tokens; target: the next frame's; condition: the ``context`` previous frames'
    latents and, when ``use_actions``, the action between the last context frame and the target.
    """

    vae: VAEConfig = field(default_factory=VAEConfig)
    context: int = 2  # K previous frames in the condition (the last one is also the a2a source)
    patch: int = 4
    use_actions: bool = False
    action_dim: int = 0  # per frame step (frame_stride * A); filled from the data
    frame_stride: int = 1  # recorded for reference: the data's frame stride
    decode_mode: str = "residual"  # residual: last frame + D(z_next) - D(z_last); direct: D(z_next)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    backbone: TransformerConfig = field(default_factory=lambda: TransformerConfig(preset="small"))

    def __post_init__(self) -> None:
        if self.context < 1:
            raise ValueError(f"video.context must be >= 1, got {self.context}")
        _, h, w = self.vae.latent_shape
        if h % self.patch or w % self.patch:
            raise ValueError(f"video.patch={self.patch} must divide the latent size {h}x{w}")
        if self.decode_mode not in ("residual", "direct"):
            raise ValueError(f"video.decode_mode must be 'residual' or 'direct', got {self.decode_mode!r}")
        if self.objective.name == "mip":
            raise ValueError("video.objective.name=mip is not offered for video; use a2a, flow, ddpm, ddim or regression")
        if self.use_actions and self.action_dim < 1:
            self.action_dim = 0  # filled from the data before the model is built

    @property
    def token_dim(self) -> int:
        return self.vae.latent_channels * self.patch ** 2

    @property
    def num_patches(self) -> int:
        _, h, w = self.vae.latent_shape
        return (h // self.patch) * (w // self.patch)
