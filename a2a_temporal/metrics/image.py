"""Per-frame PSNR and SSIM on uint8 frames ``(N, H, W, 3)`` (data range [0, 1])."""
from __future__ import annotations

import numpy as np
import torch


def to_float(frames, dtype=torch.float32) -> torch.Tensor:
    """uint8 ``(N, H, W, 3)`` -> float ``(N, 3, H, W)`` in [0, 1], contiguous: a reduction's order
    follows the memory layout, so equal frames in different layouts (a decoded channels-last view,
    a slice of a clip) would otherwise score a few ulps apart."""
    x = torch.as_tensor(np.ascontiguousarray(frames))
    return x.permute(0, 3, 1, 2).contiguous().to(dtype) / 255.0


def per_frame_psnr(pred, truth) -> np.ndarray:
    from torchmetrics.functional.image import peak_signal_noise_ratio

    p, t = to_float(pred, torch.float64), to_float(truth, torch.float64)
    out = peak_signal_noise_ratio(p, t, data_range=1.0, reduction="none", dim=(1, 2, 3)).numpy()
    return np.minimum(out, 100.0)  # identical frames: cap the infinite PSNR at 100 dB


def per_frame_ssim(pred, truth) -> np.ndarray:
    from torchmetrics.functional.image import structural_similarity_index_measure

    p, t = to_float(pred), to_float(truth)
    return structural_similarity_index_measure(p, t, data_range=1.0, reduction="none").numpy()


def bootstrap_mean_ci(values, n: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (one value per independent unit,
    e.g. per held-out video: frames of one video are not independent samples)."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) < 2:
        return (float(v.mean()), float(v.mean())) if len(v) else (float("nan"), float("nan"))
    means = v[np.random.default_rng(seed).integers(0, len(v), size=(n, len(v)))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)
