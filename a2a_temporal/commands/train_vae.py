"""Train a small AutoencoderKL from scratch on the frames of a video folder.

    python tools/train_vae.py --config configs/video/vae_64.yaml --output-dir runs/vae64 \
        [--data.root=data/videos/pickcube64/set0] [--train.iterations=...]

``--augment=colour`` trains on randomly flipped / rotated frames with permuted and rescaled colour
channels: a VAE trained on a few dozen videos otherwise learns their palettes and reconstructs
held-out videos of the same kind far worse than its training frames (``geometry``: flips and
rotations only; ``none``, the default, keeps the frames as they are).

Reports reconstruction PSNR on held-out videos, computes the latent scaling factor from the
training frames (stored in the VAE's config) and writes OUTPUT_DIR/vae/{config.json,
model.safetensors}, OUTPUT_DIR/vae_summary.json and a reconstruction PNG.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from a2a_temporal.cli import run_cli
from a2a_temporal.config import parse_cli, to_dict
from a2a_temporal.data.video_folder import VideoDataConfig, check_augment, load_folder
from a2a_temporal.errors import ConfigError
from a2a_temporal.heads.video import VAEConfig, VideoVAE
from a2a_temporal.heads.video.data import FrameDataset, augment_collate
from a2a_temporal.metrics import per_frame_psnr
from a2a_temporal.training import TrainConfig, Trainer, seed_init


@dataclass
class TrainVAEConfig:
    output_dir: str = ""
    data: VideoDataConfig = field(default_factory=VideoDataConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        iterations=3000, batch_size=32, lr=5e-4, warmup_iterations=200, ema_decay=0.0, eval_every=1000,
        best_metric="val_psnr", threads=2))
    val_frames: int = 512  # held-out frames used for the PSNR report
    augment: str = "none"  # none | geometry (flips, 90-degree turns) | colour (geometry + channel permutation / gain / offset)


@torch.no_grad()
def reconstruct(vae: VideoVAE, frames: torch.Tensor, batch: int = 64) -> torch.Tensor:
    return torch.cat([vae.decode(vae.encode(frames[i:i + batch])) for i in range(0, len(frames), batch)])


def save_grid(path: Path, truth: torch.Tensor, rec: torch.Tensor, n: int = 8) -> None:
    from PIL import Image

    idx = np.linspace(0, len(truth) - 1, n).astype(int)
    rows = [np.concatenate(list(x[idx].numpy()), axis=1) for x in (truth, rec)]
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


@run_cli
def main(argv=None) -> dict:
    cfg = parse_cli(TrainVAEConfig, argv)
    if not cfg.output_dir:
        raise ConfigError("no output directory: pass --output-dir DIR")
    if not cfg.data.root:
        raise ConfigError("data.root is empty: pass --data.root=<folder of videos>")
    check_augment(cfg.augment)
    if cfg.data.size != cfg.vae.image_size:
        raise ConfigError(f"data.size={cfg.data.size} differs from vae.image_size={cfg.vae.image_size}")
    train_clips = load_folder(cfg.data.root, cfg.data.size, "train", cfg.data.val_every, cfg.data.frame_stride,
                              with_actions=False, progress=True)
    val_clips = load_folder(cfg.data.root, cfg.data.size, "val", cfg.data.val_every, cfg.data.frame_stride,
                            with_actions=False)
    data = FrameDataset(train_clips)
    val = FrameDataset(val_clips).frames
    g = torch.Generator().manual_seed(0)
    val = val[torch.randperm(len(val), generator=g)[: cfg.val_frames]]
    print(f"frames: {len(data)} train from {len(train_clips)} videos, {len(val)} held-out from {len(val_clips)} videos")
    seed_init(cfg.train.seed)
    vae = VideoVAE(cfg.vae)

    def eval_fn(model, step):
        rec = reconstruct(model, val)
        psnr = float(per_frame_psnr(rec.numpy(), val.numpy()).mean())
        print(f"\n[eval @ {step}] held-out reconstruction PSNR {psnr:.2f} dB", flush=True)
        return {"val_psnr": psnr}

    trainer = Trainer(vae, data, cfg.train, cfg.output_dir, eval_fn=eval_fn,
                      collate_fn=partial(augment_collate, mode=cfg.augment),
                      run_config=to_dict(cfg))
    summary = trainer.fit()
    best = Path(cfg.output_dir) / "checkpoints" / "best" / "pretrained_model"
    final = VideoVAE.from_pretrained(best if best.exists() else trainer.ckpt_root / "last" / "pretrained_model")
    sample = data.frames[torch.randperm(len(data), generator=g)[:2048]]
    scale = final.fit_scaling_factor(sample)
    out = Path(cfg.output_dir)
    final.save_pretrained(out / "vae")
    rec = reconstruct(final, val)
    psnr = per_frame_psnr(rec.numpy(), val.numpy())
    save_grid(out / "vae_reconstructions.png", val, rec)
    lat = final.encode(sample[:512])
    train_psnr = per_frame_psnr(reconstruct(final, sample[:512]).numpy(), sample[:512].numpy())
    result = {"vae": str(out / "vae"), "val_psnr": float(psnr.mean()), "val_psnr_std": float(psnr.std()),
              "train_psnr": float(train_psnr.mean()), "augment": cfg.augment,
              "scaling_factor": scale, "latent_shape": list(lat.shape[1:]), "latent_std_after_scaling": float(lat.std()),
              "train_frames": len(data), "val_frames": len(val), "parameters": sum(p.numel() for p in final.parameters()),
              "train_time_s": summary["train_time_s"], "iterations": summary["iterations"]}
    (out / "vae_summary.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
