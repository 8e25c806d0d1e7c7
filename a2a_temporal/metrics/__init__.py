"""Image metrics for next-frame prediction (torchmetrics' functional PSNR / SSIM, per frame)."""
from .image import per_frame_psnr, per_frame_ssim, to_float

__all__ = ["per_frame_psnr", "per_frame_ssim", "to_float"]
