#!/usr/bin/env python
"""Single-step next-frame prediction, side by side with the multi-step Gaussian baseline.

Self-contained (a few minutes on a CPU): writes a folder of small synthetic videos (squares
moving and bouncing), trains a tiny VAE on them, then two predictors on the same backbone and
budget, one flowing from the previous frame's latent (a2a) and one from Gaussian noise (flow),
and shows truth | a2a 1 step | flow 1 step | flow 10 steps on a held-out video:

    python demos/video_single_step.py [--out runs/video_demo]

With trained models (e.g. from tools/train_video.py on ManiSkill rollouts):

    python demos/video_single_step.py --a2a runs/video_a2a --flow runs/video_flow --video <held-out .mp4>

Writes ``<out>/side_by_side.{mp4,gif}`` and ``<out>/video_demo.json``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from a2a_temporal.cli import run_cli, run_tool
from a2a_temporal.data.video_folder import list_videos, load_clip, split_files
from a2a_temporal.data.video_io import write_video
from a2a_temporal.heads.video import LatentVideoFlow
from a2a_temporal.metrics.rollout import horizon_metrics
from a2a_temporal.training import resolve_pretrained


def load_model(path) -> LatentVideoFlow:
    return LatentVideoFlow.from_pretrained(resolve_pretrained(path)).eval()


def bouncing_squares(T: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Two coloured squares moving at constant speed and bouncing off the borders."""
    frames = np.zeros((T, size, size, 3), np.uint8)
    frames[:] = np.linspace(30, 90, size, dtype=np.uint8)[None, :, None, None]
    squares = []
    for colour in ((230, 70, 50), (60, 200, 90)):
        s = int(rng.integers(5, 8))
        pos = rng.uniform(0, size - s, 2)
        vel = rng.uniform(1.0, 2.5, 2) * rng.choice([-1, 1], 2)
        squares.append([s, pos, vel, colour])
    for t in range(T):
        for sq in squares:
            s, pos, vel, colour = sq
            y, x = np.round(pos).astype(int)
            frames[t, y:y + s, x:x + s] = colour
            pos += vel
            for d in range(2):
                if pos[d] < 0 or pos[d] > size - s:
                    vel[d] = -vel[d]
                    pos[d] = np.clip(pos[d], 0, size - s)
    return frames


def make_videos(folder: Path, n: int = 40, T: int = 24, size: int = 32) -> None:
    rng = np.random.default_rng(0)
    for i in range(n):
        write_video(folder / f"squares_{i:03d}.mp4", bouncing_squares(T, size, rng), fps=10)


def train_everything(out: Path, steps: int) -> tuple[Path, Path, Path]:
    videos = out / "videos"
    if not list(videos.glob("*.mp4")):
        make_videos(videos)
    vae_args = ["--output-dir", str(out / "vae"), f"--data.root={videos}", "--data.size=32", "--vae.image_size=32",
                "--vae.block_out_channels=[16,32]", "--vae.norm_num_groups=8", "--train.iterations=600",
                "--train.batch_size=32", "--train.lr=0.002", "--train.eval_every=0", "--train.log_every=100",
                "--val_frames=128"]
    if not (out / "vae" / "vae" / "model.safetensors").is_file():
        run_tool("train_vae.py", vae_args)
    for name in ("a2a", "flow"):
        if not (out / name / "checkpoints" / "last").exists():
            run_tool("train_video.py", ["--output-dir", str(out / name), "--vae-path", str(out / "vae"), f"--data.root={videos}",
                              "--data.size=32", "--data.frame_stride=1", "--video.use_actions=false",
                              f"--video.objective.name={name}", "--video.patch=2", "--video.backbone.preset=tiny",
                              f"--train.iterations={steps}", "--train.batch_size=64", "--train.lr=0.001",
                              "--train.eval_every=0", "--train.log_every=100", "--eval.windows=64"])
    held_out = split_files(list_videos(videos), "val", 10)[0]
    return out / "a2a", out / "flow", held_out


@run_cli
def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/video_demo")
    p.add_argument("--a2a", default=None, help="trained a2a video checkpoint (skips the self-contained training)")
    p.add_argument("--flow", default=None, help="trained Gaussian-flow video checkpoint")
    p.add_argument("--video", default=None, help="held-out video to predict")
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--train-iterations", type=int, default=1200, help="training iterations of each predictor (self-contained mode)")
    a = p.parse_args(argv)
    out = Path(a.out)
    torch.set_num_threads(2)
    if a.a2a and a.flow and a.video:
        a2a_dir, flow_dir, video = Path(a.a2a), Path(a.flow), Path(a.video)
    else:
        a2a_dir, flow_dir, video = train_everything(out, a.train_iterations)
    a2a, flow = load_model(a2a_dir), load_model(flow_dir)
    clip = load_clip(video, a2a.config.vae.image_size, a2a.config.frame_stride, with_actions=a2a.config.use_actions)
    K = a2a.config.context
    rows, report = {}, {}
    for name, model, steps in (("a2a, 1 step", a2a, 1), ("flow, 1 step", flow, 1), ("flow, 10 steps", flow, 10)):
        torch.manual_seed(0)
        m = horizon_metrics(model, clip, K, a.frames, steps)
        rows[name] = m["pred"]
        report[name] = {"psnr_per_frame": m["psnr"].round(2).tolist(), "mean_psnr": float(m["psnr"].mean()),
                        "next_frame_psnr": float(m["psnr"][0]), "frames_per_second": a.frames / m["seconds"]}
    truth = m["truth"]
    report["copy last frame"] = {"psnr_per_frame": m["copy_psnr"].round(2).tolist(),
                                 "mean_psnr": float(m["copy_psnr"].mean()), "next_frame_psnr": float(m["copy_psnr"][0])}
    sep = np.full((a.frames, truth.shape[1], 2, 3), 255, np.uint8)
    panel = np.concatenate([truth] + [x for r in rows.values() for x in (sep, r)], axis=2)
    scale = max(1, 128 // truth.shape[1])
    panel = panel.repeat(scale, axis=1).repeat(scale, axis=2)
    write_video(out / "side_by_side.mp4", panel, fps=4)
    write_video(out / "side_by_side.gif", panel, fps=4)
    (out / "video_demo.json").write_text(json.dumps({"video": str(video), "panels": ["truth", *rows], **report}, indent=2))
    print(f"\nheld-out video {video}: PSNR (dB) of {a.frames} autoregressive frames")
    print(f"{'':>16} {'next frame':>10} {'mean':>7}")
    for name, r in report.items():
        print(f"{name:>16} {r['next_frame_psnr']:>10.2f} {r['mean_psnr']:>7.2f}")
    print(f"wrote {out / 'side_by_side.gif'} (truth | " + " | ".join(rows) + ")")
    return report


if __name__ == "__main__":
    main()
