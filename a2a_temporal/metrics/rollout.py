"""Per-horizon metrics of an autoregressive video rollout against the truth and copy-last."""
from __future__ import annotations

import time

import numpy as np
import torch

from ..errors import DataError
from .image import per_frame_psnr, per_frame_ssim


def side_by_side(truth: np.ndarray, pred: np.ndarray) -> np.ndarray:
    err = np.abs(truth.astype(np.int16) - pred.astype(np.int16)).astype(np.uint8)
    sep = np.full((*truth.shape[:2], 2, 3), 255, np.uint8)
    return np.concatenate([truth, sep, pred, sep, err], axis=2)


def horizon_metrics(model, clip, context: int, frames: int, steps=None, method=None) -> dict:
    """Roll out ``frames`` frames after the first ``context`` frames of ``clip`` with ``model``
    (anything with ``config.use_actions`` and ``rollout(ctx, n, actions, steps, method, source)``);
    per-horizon PSNR / SSIM of the prediction and of the copy-last-frame baseline."""
    total = context + frames
    if clip.frames.shape[0] < total:
        raise DataError(f"{clip.path}: {clip.frames.shape[0]} frames (after frame stride), need context {context} "
                        f"+ {frames} predicted = {total}")
    ctx = torch.from_numpy(clip.frames[:context])[None]
    acts = None
    if model.config.use_actions:
        if clip.actions is None:
            raise DataError(f"{clip.path}: the model is action-conditioned but no .actions.npy lies beside the video")
        acts = torch.from_numpy(clip.actions[context - 1: context - 1 + frames])[None]
    t0 = time.perf_counter()
    pred = model.rollout(ctx, frames, acts, steps=steps, method=method, source=clip.path)[0].numpy()
    seconds = time.perf_counter() - t0
    truth = clip.frames[context:total]
    copy = np.repeat(clip.frames[context - 1][None], frames, axis=0)
    return {"pred": pred, "truth": truth, "seconds": seconds,
            "psnr": per_frame_psnr(pred, truth), "ssim": per_frame_ssim(pred, truth),
            "copy_psnr": per_frame_psnr(copy, truth), "copy_ssim": per_frame_ssim(copy, truth)}
