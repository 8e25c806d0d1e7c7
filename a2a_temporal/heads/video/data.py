"""Datasets of the video head: frames for the VAE, cached latent windows for the predictor."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ...data.video_folder import Clip


class FrameDataset(Dataset):
    """Every frame of every clip; batches are ``{"frames": uint8 (B, H, W, 3)}``."""

    def __init__(self, clips: list[Clip]):
        self.frames = torch.from_numpy(np.concatenate([c.frames for c in clips]))

    def __len__(self) -> int:
        return self.frames.shape[0]

    def __getitems__(self, idx) -> dict:
        return {"frames": self.frames[torch.as_tensor(idx)]}


def _draw_transforms(b: int, generator: torch.Generator | None) -> dict:
    """Random draws for ``b`` transforms, in a fixed order (so a seeded generator gives the same ones)."""
    return {"geometry": torch.rand(b, 3, generator=generator),
            "perm": torch.argsort(torch.rand(b, 3, generator=generator), dim=1),
            "gain": 0.6 + 0.8 * torch.rand(b, 1, 1, 3, generator=generator),
            "offset": -40.0 + 80.0 * torch.rand(b, 1, 1, 3, generator=generator)}


def _apply_transforms(frames: torch.Tensor, mode: str, d: dict) -> torch.Tensor:
    """Frame ``i`` of uint8 ``(B, H, W, 3)`` transformed by draw ``i`` of ``d``."""
    x = frames.clone()
    square = frames.shape[1] == frames.shape[2]
    r = d["geometry"]
    for i in range(x.shape[0]):
        f = x[i]
        if r[i, 0] < 0.5:
            f = f.flip(1)
        if r[i, 1] < 0.5:
            f = f.flip(0)
        if square and r[i, 2] < 0.5:
            f = f.transpose(0, 1)
        x[i] = f.clone()
    if mode == "colour":
        x = torch.gather(x, 3, d["perm"][:, None, None, :].expand_as(x))
        x = (x.float() * d["gain"] + d["offset"]).round().clamp(0, 255).to(torch.uint8)
    return x


def augment_frames(frames: torch.Tensor, mode: str, generator: torch.Generator | None = None) -> torch.Tensor:
    """A randomly transformed copy of uint8 frames ``(B, H, W, 3)`` (one draw per frame).

    ``geometry``: horizontal / vertical flips and, for square frames, a quarter turn; ``colour``
    adds a permutation of the RGB channels and a per-channel gain in [0.6, 1.4] and offset in
    [-40, 40] grey levels (clamped). The VAE sees these frame by frame: it has to reconstruct
    whatever it is given, so they widen what it learns to encode without changing any task.
    """
    if mode == "none":
        return frames
    return _apply_transforms(frames, mode, _draw_transforms(frames.shape[0], generator))


def augment_clip(frames: np.ndarray, mode: str, generator: torch.Generator | None = None) -> np.ndarray:
    """One clip ``(T, H, W, 3)`` uint8 with *one* random transform (as :func:`augment_frames`)
    applied to every frame, so that the motion between frames stays a motion of the same kind: a
    flipped, turned or re-coloured copy of the video, for the predictor's training set."""
    if mode == "none":
        return frames
    d = {k: v.expand(frames.shape[0], *v.shape[1:]) for k, v in _draw_transforms(1, generator).items()}
    return _apply_transforms(torch.from_numpy(frames), mode, d).numpy()


def augment_collate(batch: dict, mode: str) -> dict:
    return {"frames": augment_frames(batch["frames"], mode)}


class LatentWindows(Dataset):
    """(clip, t) windows over per-clip latents ``(T, C, h, w)``, ``t >= 1``::

        context (K, C, h, w)  latents t-K .. t-1 (edge-padded before the clip start)
        target  (C, h, w)     latent t
        action  (Da,)         action from frame t-1 to t (action-conditioned data only)
    """

    def __init__(self, latents: list[torch.Tensor], context: int, actions: list[np.ndarray] | None = None):
        self.K = context
        self.lat = torch.cat(latents)
        self.act = torch.from_numpy(np.concatenate(actions)) if actions is not None else None
        starts, a_starts, ts = [], [], []
        o = a = 0
        for z in latents:
            T = z.shape[0]
            ts.append(torch.arange(1, T))
            starts.append(torch.full((T - 1,), o))
            a_starts.append(torch.full((T - 1,), a))
            o += T
            a += T - 1
        self.t, self.start, self.a_start = torch.cat(ts), torch.cat(starts), torch.cat(a_starts)

    def __len__(self) -> int:
        return self.t.shape[0]

    def __getitems__(self, idx) -> dict:
        idx = torch.as_tensor(idx)
        t, s = self.t[idx][:, None], self.start[idx][:, None]
        ctx = (t + torch.arange(-self.K, 0)).clamp_min(0)  # (B, K)
        batch = {"context": self.lat[s + ctx], "target": self.lat[s[:, 0] + t[:, 0]]}
        if self.act is not None:
            batch["action"] = self.act[self.a_start[idx] + self.t[idx] - 1]
        return batch


def identity_collate(batch):
    return batch


def cache_key(vae_dir: Path, clips: list[Clip], frame_stride: int) -> str:
    h = hashlib.sha256()
    for f in ("config.json", "model.safetensors"):
        p = Path(vae_dir) / f
        st = p.stat()
        h.update(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    for c in clips:
        st = Path(c.path).stat()
        h.update(f"{Path(c.path).resolve()}:{st.st_size}:{st.st_mtime_ns}:{c.frames.shape}".encode())
    h.update(str(frame_stride).encode())
    return h.hexdigest()[:16]


@torch.no_grad()
def encode_clips(vae, clips: list[Clip], cache_dir: Path | None = None, key: str | None = None,
                 batch_size: int = 64, progress: bool = True) -> list[torch.Tensor]:
    """Scaled VAE latents ``(T, C, h, w)`` per clip, cached once per (VAE, dataset) in ``cache_dir``."""
    from safetensors.torch import load_file, save_file
    from tqdm.auto import tqdm

    path = Path(cache_dir) / f"latents-{key}.safetensors" if cache_dir is not None and key else None
    if path is not None and path.is_file():
        data = load_file(str(path))
        return [data[f"clip_{i}"] for i in range(len(clips))]
    out = []
    vae.eval()
    for c in tqdm(clips, desc="encode latents", disable=not progress, dynamic_ncols=True):
        frames = torch.from_numpy(c.frames)
        out.append(torch.cat([vae.encode(frames[i:i + batch_size], c.path) for i in range(0, len(frames), batch_size)]).cpu())
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A unique temporary name per writer: two runs sharing a VAE may fill the cache at once;
        # each rename is atomic, so a reader sees one complete file or none.
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            save_file({f"clip_{i}": z.contiguous() for i, z in enumerate(out)}, tmp,
                      metadata={"clips": json.dumps([c.path for c in clips])})
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return out
