"""Predict the next frames of a video with a trained next-frame model.

    python tools/predict_video.py --checkpoint runs/video_a2a --video data/videos/pickcube64/set0/episode_0009.mp4 \
        --context 2 --frames 16 --num-inference-steps 1 --out runs/video_a2a/pred.mp4 --json runs/video_a2a/pred.json

Uses the first ``--context`` frames (after the model's frame stride) as context and predicts the
next ``--frames`` frames autoregressively (with the recorded actions, for action-conditioned
models). Writes a side-by-side video (truth | prediction | absolute error), a GIF beside it, and
per-horizon PSNR / SSIM against the truth and against the copy-last-frame baseline.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from a2a_temporal.cli import run_cli
from a2a_temporal.data.video_folder import load_clip
from a2a_temporal.data.video_io import write_video
from a2a_temporal.errors import DataError
from a2a_temporal.heads.video import LatentVideoFlow
from a2a_temporal.metrics.rollout import horizon_metrics, side_by_side
from a2a_temporal.training import resolve_pretrained


def load_model(path) -> LatentVideoFlow:
    return LatentVideoFlow.from_pretrained(resolve_pretrained(path)).eval()


@run_cli
def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--video", required=True)
    p.add_argument("--context", type=int, default=None, help="context frames (default: the model's)")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--num-inference-steps", "--steps", dest="num_inference_steps", type=int, default=None,
                   help="sampler steps (default: the objective's: 1 for a2a)")
    p.add_argument("--method", default=None, choices=["euler", "midpoint", "heun"])
    p.add_argument("--frame-stride", type=int, default=None, help="default: the stride the model was trained with")
    p.add_argument("--resize", action="store_true", help="resize frames to the VAE's size instead of refusing")
    p.add_argument("--out", default="prediction.mp4")
    p.add_argument("--json", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    model = load_model(a.checkpoint)
    size = model.config.vae.image_size
    stride = a.frame_stride or model.config.frame_stride
    clip = load_clip(Path(a.video), size if a.resize else None, stride, with_actions=model.config.use_actions)
    if clip.frames.shape[1:3] != (size, size):
        raise DataError(f"{a.video}: frames are {clip.frames.shape[1]}x{clip.frames.shape[2]} but the VAE was "
                        f"trained on {size}x{size} frames (pass --resize to resize them)")
    m = horizon_metrics(model, clip, a.context or model.config.context, a.frames, a.num_inference_steps, a.method)
    out = Path(a.out)
    video = side_by_side(m["truth"], m["pred"])
    write_video(out, video, fps=5)
    write_video(out.with_suffix(".gif"), video, fps=5)
    res = {"video": a.video, "checkpoint": a.checkpoint, "objective": model.objective.name,
           "steps": a.num_inference_steps or model.objective.default_steps, "context": a.context or model.config.context,
           "frames": a.frames, "frame_stride": stride,
           "psnr": m["psnr"].tolist(), "ssim": m["ssim"].tolist(),
           "copy_last_psnr": m["copy_psnr"].tolist(), "copy_last_ssim": m["copy_ssim"].tolist(),
           "mean_psnr": float(m["psnr"].mean()), "mean_copy_last_psnr": float(m["copy_psnr"].mean()),
           "next_frame_psnr": float(m["psnr"][0]), "next_frame_copy_last_psnr": float(m["copy_psnr"][0]),
           "frames_per_second": a.frames / m["seconds"], "out": str(out), "gif": str(out.with_suffix(".gif"))}
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(res, indent=2))
    print(f"{'h':>3} {'PSNR':>7} {'copy':>7} {'SSIM':>6} {'copy':>6}")
    for h in range(a.frames):
        print(f"{h + 1:>3} {m['psnr'][h]:7.2f} {m['copy_psnr'][h]:7.2f} {m['ssim'][h]:6.3f} {m['copy_ssim'][h]:6.3f}")
    print(f"wrote {out}, {out.with_suffix('.gif')}" + (f" and {a.json}" if a.json else ""))
    return res


if __name__ == "__main__":
    main()
