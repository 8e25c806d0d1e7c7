"""Settings for a folder of videos, chosen from the videos themselves.

A user's first run on their own folder should not depend on guessing the frame size, the frame
stride or the VAE's depth. :func:`probe_folder` reads every video once and decides:

- **size**: the largest of ``SIZES`` that is no larger than the smallest frame side (and
  ``max_size``), so frames are only ever shrunk;
- **VAE**: one down-sampling stage per doubling above 32 px, so every size gets a 16 x 16
  latent (``vae_blocks``); patch 4 gives 16 tokens per frame;
- **frame stride**: the smallest stride at which consecutive kept frames differ by at least
  ``min_change`` grey levels on average (mean absolute difference, 0-255), among the strides that
  leave every video at least ``context + min_targets`` frames. Fast-changing videos keep every
  frame; slow ones (a robot filmed at 20 fps) skip frames, so a prediction has a change to learn.

A folder whose videos are too short for the context at stride 1 is refused with the name of the
shortest file, as is a folder with fewer than two videos (one must be held out).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .video_folder import split_roots
from .video_io import read_video, video_shape

SIZES = (32, 64, 128)
MAX_STRIDE = 8


def vae_blocks(size: int) -> list[int]:
    """``block_out_channels`` of a VAE whose latent is 16 x 16 for a ``size`` x ``size`` frame."""
    if size not in SIZES:
        raise DataError(f"frame size {size} is not one of {list(SIZES)}")
    return [32, 64] + [64] * (SIZES.index(size))


def mean_change(video: np.ndarray, stride: int) -> float:
    """Mean absolute grey-level difference between frames ``stride`` apart (0-255 scale)."""
    return float(np.abs(video[stride:].astype(np.int16) - video[:-stride].astype(np.int16)).mean())


def probe_folder(root: str | Path, context: int = 2, max_size: int = 64, min_change: float = 2.0,
                 min_targets: int = 2, max_stride: int = MAX_STRIDE) -> dict:
    """Read every video under ``root`` and choose size, stride and VAE (see the module docstring).

    Returns a JSON-able dict: the choices, the per-stride change curve they came from, and the
    folder's statistics (videos, frames, native sizes)."""
    files = split_roots(root, "all", 0)
    if len(files) < 2:
        raise DataError(f"{root}: {len(files)} video file; at least 2 are needed (one is held out for the report)")
    shapes = [video_shape(f) for f in files]
    lengths = [t for t, _, _ in shapes]
    native = [(h, w) for _, h, w in shapes]
    need = context + min_targets
    short = int(np.argmin(lengths))
    if lengths[short] < need:
        raise DataError(f"{files[short]}: {lengths[short]} frames, too short for a context of {context} frames plus "
                        f"{min_targets} to predict (at least {need} frames per video)")
    side = min(min(h, w) for h, w in native)
    fitting = [s for s in SIZES if s <= min(side, max_size)]
    if not fitting:
        raise DataError(f"{root}: the smallest video side is {side} px; at least {SIZES[0]} px is needed "
                        f"(max_size={max_size})")
    size = fitting[-1]
    changes: dict[int, list[float]] = {s: [] for s in range(1, max_stride + 1)}  # per video, one at a time
    lengths = []
    for f in files:
        v = read_video(f, size=size)
        lengths.append(len(v))  # decoded counts (a container's count can be off by one)
        for s in changes:
            if len(v) > s:
                changes[s].append(mean_change(v, s))
    admissible = [s for s in range(1, max_stride + 1) if all((n - 1) // s + 1 >= need for n in lengths)]
    if not admissible:
        short = int(np.argmin(lengths))
        raise DataError(f"{files[short]}: {lengths[short]} decodable frames, too short for a context of {context} "
                        f"frames plus {min_targets} to predict")
    curve = {s: float(np.mean(changes[s])) for s in admissible}
    reaching = [s for s in admissible if curve[s] >= min_change]
    stride = reaching[0] if reaching else admissible[-1]
    reason = (f"smallest stride with a mean change >= {min_change} grey levels" if reaching else
              f"no admissible stride reaches {min_change} grey levels of change: the largest that leaves "
              f"{need} frames per video")
    return {"root": str(root), "videos": len(files), "frames_min": int(min(lengths)), "frames_max": int(max(lengths)),
            "native_sizes": sorted({f"{w}x{h}" for h, w in native}), "size": size,
            "vae_block_out_channels": vae_blocks(size), "frame_stride": stride, "stride_reason": reason,
            "mean_change_by_stride": {str(s): round(c, 3) for s, c in curve.items()}, "context": context,
            "min_change": min_change}
