"""Train a next-frame predictor in the latent space of a trained VAE.

    python tools/train_video.py --config configs/video/pickcube_64_actions.yaml --output-dir runs/video_a2a \
        [--vae-path runs/vae64/vae] [--video.objective.name=flow] [--train.iterations=...]

Latents of every video are computed once and cached beside the VAE. Validation (every
``train.eval_every`` iterations): 1-step next-frame PSNR on held-out videos (teacher-forced context)
against the truth and against copying the last frame; ``best`` keeps the highest PSNR.

``--augment=geometry|colour`` adds ``augment_copies`` transformed copies of every training video
(one flip / quarter turn / re-colouring per copy, the same for all its frames, so the motion stays
the same kind of motion), encoded and cached like the originals: for folders of few videos, where
the predictor otherwise memorises what each of them does. Held-out files are never augmented.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from a2a_temporal.cli import run_cli
from a2a_temporal.config import parse_cli, to_dict
from a2a_temporal.data.video_folder import Clip, VideoDataConfig, check_augment, load_folder
from a2a_temporal.errors import ConfigError
from a2a_temporal.heads.video import LatentVideoFlow, VideoFlowConfig, VideoVAE
from a2a_temporal.heads.video.data import LatentWindows, augment_clip, cache_key, encode_clips, identity_collate
from a2a_temporal.metrics import per_frame_psnr
from a2a_temporal.training import TrainConfig, Trainer, resolve_pretrained, seed_init


@dataclass
class VideoEvalConfig:
    windows: int = 256  # held-out windows scored at each validation
    num_inference_steps: Optional[int] = None  # sampler steps (None: the objective's default)


@dataclass
class TrainVideoConfig:
    output_dir: str = ""
    vae_path: str = ""  # a trained VAE (tools/train_vae.py's OUTPUT_DIR/vae, or that OUTPUT_DIR)
    data: VideoDataConfig = field(default_factory=lambda: VideoDataConfig(frame_stride=4))
    video: VideoFlowConfig = field(default_factory=VideoFlowConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        iterations=4000, batch_size=64, lr=5e-4, warmup_iterations=200, ema_decay=0.999, eval_every=1000,
        best_metric="val_psnr", threads=2))
    eval: VideoEvalConfig = field(default_factory=VideoEvalConfig)
    augment: str = "none"  # none | geometry | colour: transformed copies of the training videos (one draw per copy)
    augment_copies: int = 4  # copies per training video when augment is not none


def augmented_copies(cfg: TrainVideoConfig, vae: VideoVAE, vae_dir: Path, clips: list[Clip]) -> list[torch.Tensor]:
    """Latents of ``augment_copies`` clip-wise transformed copies of every training clip (seeded
    by ``train.seed``; cached beside the VAE under a key that names the mode, count and seed)."""
    g = torch.Generator().manual_seed(cfg.train.seed)
    copies = [Clip(f"{c.path}#{cfg.augment}{j}", augment_clip(c.frames, cfg.augment, g), None)
              for j in range(cfg.augment_copies) for c in clips]
    key = cache_key(vae_dir, clips, cfg.data.frame_stride) + f"-{cfg.augment}x{cfg.augment_copies}s{cfg.train.seed}"
    print(f"augment: {len(copies)} {cfg.augment} copies of {len(clips)} training videos", flush=True)
    return encode_clips(vae, copies, vae_dir / "latent_cache", key)


def resolve_vae(path: str) -> Path:
    if not path:
        raise ConfigError("vae_path is empty: pass --vae-path DIR (from tools/train_vae.py)")
    p = Path(path)
    for cand in (p, p / "vae"):
        if (cand / "config.json").is_file():
            return cand
    return resolve_pretrained(p)


def load_data(cfg: TrainVideoConfig, vae: VideoVAE, vae_dir: Path, split: str, progress: bool = True):
    clips = load_folder(cfg.data.root, cfg.data.size, split, cfg.data.val_every, cfg.data.frame_stride,
                        with_actions=cfg.video.use_actions, min_frames=2, progress=progress,
                        all_phases=cfg.data.all_phases and split == "train")
    if cfg.video.use_actions and clips[0].actions is None:
        raise ConfigError(f"video.use_actions=true but the videos in {cfg.data.root} have no .actions.npy beside them")
    latents = encode_clips(vae, clips, vae_dir / "latent_cache", cache_key(vae_dir, clips, cfg.data.frame_stride),
                           progress=progress)
    actions = [c.actions for c in clips] if cfg.video.use_actions else None
    return clips, latents, actions


def validation_set(clips, latents, actions, context: int, n: int, seed: int = 0):
    """Fixed held-out windows: frames (context+1) with their latents and actions."""
    rng = np.random.default_rng(seed)
    pairs = [(i, t) for i, c in enumerate(clips) for t in range(1, len(c.frames))]
    pick = [pairs[j] for j in sorted(rng.choice(len(pairs), size=min(n, len(pairs)), replace=False))]
    ctx_frames, ctx_lat, truth, acts = [], [], [], []
    for i, t in pick:
        idx = np.clip(np.arange(t - context, t), 0, None)
        ctx_frames.append(clips[i].frames[idx])
        ctx_lat.append(latents[i][idx])
        truth.append(clips[i].frames[t])
        if actions is not None:
            acts.append(actions[i][t - 1])
    return (torch.from_numpy(np.stack(ctx_frames)), torch.stack(ctx_lat), np.stack(truth),
            torch.from_numpy(np.stack(acts)) if actions is not None else None)


@torch.no_grad()
def next_frame_psnr(model: LatentVideoFlow, val, num_inference_steps=None, batch: int = 64) -> dict:
    frames, lat, truth, acts = val
    preds = []
    for i in range(0, len(frames), batch):
        z = model.predict_latent(lat[i:i + batch], None if acts is None else acts[i:i + batch], steps=num_inference_steps)
        preds.append(model._to_frames(z, lat[i:i + batch, -1], frames[i:i + batch, -1]))
    pred = torch.cat(preds).numpy()
    return {"val_psnr": float(per_frame_psnr(pred, truth).mean()),
            "copy_last_psnr": float(per_frame_psnr(frames[:, -1].numpy(), truth).mean())}


@run_cli
def main(argv=None) -> dict:
    cfg = parse_cli(TrainVideoConfig, argv)
    if not cfg.output_dir:
        raise ConfigError("no output directory: pass --output-dir DIR")
    check_augment(cfg.augment)
    if cfg.augment != "none" and cfg.video.use_actions:
        raise ConfigError(f"augment={cfg.augment} flips and turns the frames, which changes what their actions mean: "
                          "use augment=none with video.use_actions=true")
    if cfg.augment != "none" and cfg.augment_copies < 1:
        raise ConfigError(f"augment_copies={cfg.augment_copies}: expected at least 1 copy with augment={cfg.augment}")
    vae_dir = resolve_vae(cfg.vae_path)
    vae = VideoVAE.from_pretrained(vae_dir)
    if cfg.data.size != vae.config.image_size:
        raise ConfigError(f"data.size={cfg.data.size} but the VAE {vae_dir} was trained on "
                          f"{vae.config.image_size}x{vae.config.image_size} frames")
    torch.set_num_threads(cfg.train.threads or torch.get_num_threads())
    clips, latents, actions = load_data(cfg, vae, vae_dir, "train")
    extra = augmented_copies(cfg, vae, vae_dir, clips) if cfg.augment != "none" else []
    vclips, vlat, vact = load_data(cfg, vae, vae_dir, "val", progress=False)
    v = cfg.video
    v.vae = vae.config
    v.frame_stride = cfg.data.frame_stride
    if v.use_actions:
        v.action_dim = actions[0].shape[1]
    seed_init(cfg.train.seed)
    model = LatentVideoFlow(v)
    model.vae.load_state_dict(vae.state_dict())
    data = LatentWindows(latents + extra, v.context, actions)
    val = validation_set(vclips, vlat, vact, v.context, cfg.eval.windows)
    # the same number of fixed windows from the training files: the gap between the gain over copy-last
    # here and on the held-out files says whether the predictor generalises or memorises its videos
    seen = validation_set(clips, latents, actions, v.context, cfg.eval.windows, seed=1)
    print(f"videos: {len(clips)} train{f' + {len(extra)} augmented copies' if extra else ''} ({len(data)} windows), {len(vclips)} held-out; tokens {v.num_patches} x "
          f"{v.token_dim}; objective {v.objective.name}; {sum(p.numel() for p in model.net.parameters()) / 1e6:.2f}M "
          f"backbone parameters", flush=True)

    def eval_fn(m, step):
        res = next_frame_psnr(m, val, cfg.eval.num_inference_steps)
        tr = next_frame_psnr(m, seen, cfg.eval.num_inference_steps)
        res.update(train_psnr=tr["val_psnr"], train_copy_last_psnr=tr["copy_last_psnr"])
        print(f"\n[eval @ {step}] next-frame PSNR {res['val_psnr']:.2f} dB (copy-last {res['copy_last_psnr']:.2f} dB) "
              f"held out; {res['train_psnr']:.2f} dB (copy-last {res['train_copy_last_psnr']:.2f} dB) on training files",
              flush=True)
        return res

    trainer = Trainer(model, data, cfg.train, cfg.output_dir, eval_fn=eval_fn, collate_fn=identity_collate,
                      run_config=to_dict(cfg), pretrained_extra={"videos": cfg.data.root})
    summary = trainer.fit()
    summary.update({"objective": v.objective.name, "videos": cfg.data.root, "vae": str(vae_dir)})
    (Path(cfg.output_dir) / "train_summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("iterations", "train_time_s", "best")}))
    return summary


if __name__ == "__main__":
    main()
