"""Compare next-frame predictors on held-out videos, in one run.

    python tools/benchmark_video.py --videos data/videos/pickcube64/set0 \
        --model a2a=runs/video_a2a:1 --model flow=runs/video_flow:10 --frames 16 --json runs/video_bench/results.json

For each ``name=CHECKPOINT:STEPS``: 1-step-ahead PSNR / SSIM over every held-out window
(teacher-forced context), a ``--frames``-long autoregressive rollout per held-out video
(per-horizon PSNR), and throughput (frames predicted per second, batch 1). The copy-last-frame
baseline is scored on the same windows. Throughput is also timed at each of ``--throughput-steps``
(default 1 and 10) both with the VAE (frames in, frames out) and latent-only (latents in, latents
out: the rollout never touches the VAE). Writes JSON and a PNG of the per-frame PSNR curves.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from a2a_temporal.cli import parse_named_spec, run_cli
from a2a_temporal.data.video_folder import load_folder
from a2a_temporal.heads.video import LatentVideoFlow
from a2a_temporal.metrics import per_frame_psnr, per_frame_ssim
from a2a_temporal.metrics.image import bootstrap_mean_ci, to_float
from a2a_temporal.metrics.rollout import horizon_metrics
from a2a_temporal.training import resolve_pretrained
from a2a_temporal.utils import save_line_plot, versions


def video_gain_db(pred, copy, truth) -> float | None:
    """Gain over copy-last of one video, from the mean squared errors over its frames:
    ``10 log10(MSE_copy / MSE_pred)``. Unlike the mean of per-frame PSNRs it stays finite when some
    frames repeat the previous one (copy-last exact there: a per-frame PSNR of infinity, capped at
    100 dB, would swamp every other frame of the video). ``None`` when every frame repeats the last."""
    # to_float gives all three one memory layout (a reduction's order follows it) in float64
    f = lambda x: to_float(x, torch.float64)  # noqa: E731
    mse_copy = float(((f(copy) - f(truth)) ** 2).mean())
    mse_pred = float(((f(pred) - f(truth)) ** 2).mean())
    if mse_copy == 0.0:
        return None
    return 10.0 * float(np.log10(mse_copy / max(mse_pred, 1e-12)))


@torch.no_grad()
def teacher_forced(model, clips, steps, batch: int = 64) -> dict:
    """Predict every frame t >= 1 of every clip from its true context. Besides the means over all
    frames, the gain over copy-last of each video (:func:`video_gain_db`), their mean
    (``video_gain_db``) and a bootstrap interval over videos (``gain_ci95``): frames of one video are
    not independent samples."""
    K = model.config.context
    preds, truths, copies, ceils, per_video_gain = [], [], [], [], []
    for c in clips:
        frames = torch.from_numpy(c.frames)
        lat = model.encode_frames(frames[None], c.path)[0]  # (T, C, h, w)
        T = len(frames)
        idx = (torch.arange(1, T)[:, None] + torch.arange(-K, 0)[None]).clamp_min(0)  # (T-1, K)
        clip_preds = []
        for i in range(0, T - 1, batch):
            sl = slice(i, min(i + batch, T - 1))
            acts = torch.from_numpy(c.actions[sl]) if model.config.use_actions else None
            z = model.predict_latent(lat[idx[sl]], acts, steps=steps)
            clip_preds.append(model._to_frames(z, lat[idx[sl, -1]], frames[idx[sl, -1]]).numpy())
            # the ceiling the VAE allows: the true next latent through the same decoding
            ceils.append(model._to_frames(lat[1:][sl], lat[idx[sl, -1]], frames[idx[sl, -1]]).numpy())
        clip_pred = np.concatenate(clip_preds)
        gain = video_gain_db(clip_pred, c.frames[:-1], c.frames[1:])
        if gain is not None:
            per_video_gain.append(gain)
        preds.append(clip_pred)
        truths.append(c.frames[1:])
        copies.append(c.frames[:-1])
    pred, truth, copy = np.concatenate(preds), np.concatenate(truths), np.concatenate(copies)
    ceil = np.concatenate(ceils)
    return {"psnr": float(per_frame_psnr(pred, truth).mean()), "ssim": float(per_frame_ssim(pred, truth).mean()),
            "true_latent_psnr": float(per_frame_psnr(ceil, truth).mean()),
            "copy_last_psnr": float(per_frame_psnr(copy, truth).mean()),
            "copy_last_ssim": float(per_frame_ssim(copy, truth).mean()), "windows": int(len(truth)),
            "per_video_gain": per_video_gain, "video_gain_db": float(np.mean(per_video_gain)) if per_video_gain else None,
            "gain_ci95": list(bootstrap_mean_ci(per_video_gain))}


def throughput(model, clip, frames: int, steps: int, repeats: int = 3) -> dict:
    """Frames per second of a ``frames``-long rollout at batch 1, median of ``repeats``:
    ``with_vae`` (uint8 context in, uint8 frames out: encode once, roll out in latent space,
    decode once) and ``latent_only`` (latent context in, latents out; the VAE untouched)."""
    import time

    K = model.config.context
    ctx = torch.from_numpy(clip.frames[:K])[None]
    acts = torch.from_numpy(clip.actions[K - 1:K - 1 + frames])[None] if model.config.use_actions else None
    lat = model.encode_frames(ctx)
    full, latent = [], []
    for _ in range(repeats + 1):  # the first round warms up
        t0 = time.perf_counter()
        model.rollout(ctx, frames, acts, steps=steps)
        t1 = time.perf_counter()
        model.rollout_latents(lat, frames, acts, steps=steps)
        t2 = time.perf_counter()
        full.append(t1 - t0)
        latent.append(t2 - t1)
    return {"steps": steps, "model_calls_per_frame": model.objective.model_calls(steps),
            "with_vae_fps": frames / float(np.median(full[1:])), "latent_only_fps": frames / float(np.median(latent[1:]))}


def plot(path: Path, results: dict, frames: int) -> None:
    h = np.arange(1, frames + 1)
    lines = {f"{name} ({r['steps']} step{'s' if r['steps'] > 1 else ''})": (h, r["rollout_psnr"])
             for name, r in results["models"].items()}
    lines["copy last frame"] = (h, results["copy_last_rollout_psnr"], {"color": "k", "linestyle": "--"})
    save_line_plot(path, lines, "predicted frame (autoregressive)", "PSNR (dB), held-out videos")


@run_cli
def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--videos", required=True)
    p.add_argument("--model", action="append", required=True, help="name=CHECKPOINT:STEPS")
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--val-every", type=int, default=10, help="the held-out split used in training")
    p.add_argument("--split", choices=("val", "train"), default="val",
                   help="score the held-out files (default) or the training files (a large gap between the two: "
                        "the predictor memorises its videos)")
    p.add_argument("--max-videos", type=int, default=None,
                   help="score at most this many files of the split, evenly spaced (default: all)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--throughput-steps", type=int, nargs="*", default=[1, 10],
                   help="sampler steps at which each model's rollout throughput is timed (none: skip)")
    p.add_argument("--json", default="runs/video_bench/results.json")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    models = {}
    for spec in a.model:
        name, ckpt, steps = parse_named_spec(spec, "--model")
        models[name] = (LatentVideoFlow.from_pretrained(resolve_pretrained(ckpt)).eval(), steps, ckpt)
    first = next(iter(models.values()))[0].config
    clips = load_folder(a.videos, first.vae.image_size, a.split, a.val_every, first.frame_stride,
                        with_actions=any(m.config.use_actions for m, _, _ in models.values()), max_files=a.max_videos)
    long_clips = [c for c in clips if len(c.frames) >= first.context + a.frames]
    results = {"videos": a.videos, "split": a.split, "scored_videos": len(clips),
               "held_out_videos": len(clips) if a.split == "val" else 0, "rollout_videos": len(long_clips),
               "frames": a.frames, "frame_stride": first.frame_stride, "threads": a.threads, "models": {},
               "command": " ".join(["python", "tools/benchmark_video.py", *(argv if argv is not None else sys.argv[1:])]),
               "versions": versions()}
    copy_curve = None
    for name, (model, steps, ckpt) in models.items():
        torch.manual_seed(0)
        tf = teacher_forced(model, clips, steps)
        curves, copies, secs = [], [], 0.0
        for c in long_clips:
            m = horizon_metrics(model, c, model.config.context, a.frames, steps)
            curves.append(m["psnr"])
            copies.append(m["copy_psnr"])
            secs += m["seconds"]
        copy_curve = np.mean(copies, axis=0) if copies else None
        results["models"][name] = {
            "checkpoint": ckpt, "objective": model.objective.name, "steps": steps,
            "next_frame_psnr": tf["psnr"], "next_frame_ssim": tf["ssim"], "windows": tf["windows"],
            "true_latent_psnr": tf["true_latent_psnr"], "per_video_gain": tf["per_video_gain"],
            "video_gain_db": tf["video_gain_db"], "gain_ci95": tf["gain_ci95"],
            "rollout_psnr": np.mean(curves, axis=0).tolist() if curves else [],
            "frames_per_second": (len(long_clips) * a.frames / secs) if secs else None}
        if long_clips and a.throughput_steps:
            tp = [throughput(model, long_clips[0], a.frames, s) for s in a.throughput_steps]
            results["models"][name]["throughput"] = tp
            for r in tp:
                print(f"{name:>10}: {r['steps']:>3} step(s), {r['model_calls_per_frame']} call(s)/frame: "
                      f"{r['with_vae_fps']:.1f} frames/s with the VAE, {r['latent_only_fps']:.1f} latent-only", flush=True)
        results["copy_last_next_frame_psnr"] = tf["copy_last_psnr"]
        results["copy_last_next_frame_ssim"] = tf["copy_last_ssim"]
        print(f"{name:>10}: next-frame PSNR {tf['psnr']:.2f} dB (copy-last {tf['copy_last_psnr']:.2f}); gain per video "
              f"{tf['video_gain_db'] if tf['video_gain_db'] is not None else float('nan'):+.2f} dB, 95 % interval "
              f"{tf['gain_ci95'][0]:+.2f} to {tf['gain_ci95'][1]:+.2f} over {len(tf['per_video_gain'])} videos, "
              f"SSIM {tf['ssim']:.3f}; true next latent {tf['true_latent_psnr']:.2f}; {results['models'][name]['frames_per_second'] or 0:.1f} frames/s", flush=True)
    results["copy_last_rollout_psnr"] = copy_curve.tolist() if copy_curve is not None else []
    out = Path(a.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    if long_clips:
        plot(out.with_suffix(".png"), results, a.frames)
    print(f"wrote {out}" + (f" and {out.with_suffix('.png')}" if long_clips else ""))
    return results


if __name__ == "__main__":
    main()
