"""Latent-video head: a from-scratch VAE and next-frame prediction on the shared FlowTransformer."""
from .configuration import VideoFlowConfig
from .modeling import LatentVideoFlow
from .vae import VAEConfig, VideoVAE

__all__ = ["LatentVideoFlow", "VAEConfig", "VideoFlowConfig", "VideoVAE"]
