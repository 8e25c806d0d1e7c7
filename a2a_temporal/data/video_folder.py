"""A folder of ordinary video files as a dataset, split into train / val by file.

Every ``*.mp4 / *.avi / *.webm / *.mkv / *.mov`` under the root is one clip, read with decord
(PyAV as fallback) and resized to ``size`` x ``size``. When ``<stem>.actions.npy`` lies beside a
video (as ``tools/render_videos.py`` writes), its ``(T-1, A)`` actions travel with the frames.
With ``frame_stride = s`` every s-th frame is kept and the ``s`` actions between two kept frames
are concatenated to one ``(s * A)`` vector.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError
from .video_io import VIDEO_SUFFIXES, read_video

# Augmentations of the VAE's training frames (a2a_temporal.heads.video.data.augment_frames);
# here, torch-free, so that tools/video_pipeline.py can offer them without importing torch.
AUGMENTS = ("none", "geometry", "colour")


def check_augment(mode: str) -> str:
    """``mode`` if it names an augmentation, else a one-line error naming the key and the choices."""
    if mode not in AUGMENTS:
        raise ConfigError(f"augment={mode!r}: expected one of {', '.join(AUGMENTS)}")
    return mode


@dataclass
class VideoDataConfig:
    """Where the videos are and how to read them (shared by the VAE and predictor tools)."""

    root: str = ""  # folder of videos (e.g. from tools/render_videos.py), or several joined by commas
    size: int = 64  # frames are resized to size x size
    val_every: int = 10  # every val_every-th video (sorted) is held out
    frame_stride: int = 1
    all_phases: bool = True  # training: use every subsampling phase of each video (x frame_stride windows)


@dataclass
class Clip:
    path: str
    frames: np.ndarray  # (T, H, W, 3) uint8
    actions: np.ndarray | None  # (T - 1, s * A) float32


def list_videos(root: str | Path) -> list[Path]:
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise DataError(f"{root}: video folder not found")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise DataError(f"{root}: no video files ({', '.join(VIDEO_SUFFIXES)}) in this folder")
    return files


def video_roots(root: str | Path) -> list[Path]:
    """``"a,b"`` -> ``[a, b]``: several folders (tasks) read as one data set."""
    parts = [r.strip() for r in str(root).split(",") if r.strip()]
    if not parts:
        raise DataError("data.root is empty: expected a folder of videos (or several, joined by commas)")
    return [Path(r) for r in parts]


def split_roots(root: str | Path, split: str, val_every: int) -> list[Path]:
    """The files of one split over every folder in ``root``, each folder split on its own, so a
    folder's held-out files are the same whether it is read alone or beside others."""
    return [f for r in video_roots(root) for f in split_files(list_videos(r), split, val_every)]


def split_files(files: list[Path], split: str, val_every: int) -> list[Path]:
    """Deterministic split by file: every ``val_every``-th file (sorted order) is validation."""
    if split == "all" or val_every <= 0:
        return files
    if len(files) < 2:
        raise DataError(f"{files[0].parent}: need at least 2 videos to split train/val by file")
    val = [f for i, f in enumerate(files) if i % val_every == val_every - 1] or files[-1:]
    return val if split == "val" else [f for f in files if f not in val]


def load_clip(path: Path, size: int, frame_stride: int = 1, with_actions: bool = True, phase: int = 0) -> Clip:
    """One video (with its actions), keeping frames ``phase, phase + s, phase + 2s, ...``."""
    frames = read_video(path, size=size)
    actions = None
    apath = path.with_name(path.stem + ".actions.npy")
    if with_actions and apath.is_file():
        try:
            actions = np.load(apath, allow_pickle=False).astype(np.float32)
        except (ValueError, OSError) as e:
            raise DataError(f"{apath}: unreadable actions file ({e})") from None
        if actions.ndim != 2 or actions.shape[0] != frames.shape[0] - 1:
            raise DataError(f"{apath}: expected ({frames.shape[0] - 1}, A) actions for {frames.shape[0]} frames, "
                            f"got {actions.shape}")
        if not np.isfinite(actions).all():
            raise DataError(f"{apath}: contains NaN or inf")
    return subsample(Clip(str(path), frames, actions), frame_stride, phase)


def subsample(clip: Clip, stride: int, phase: int = 0) -> Clip:
    """Every ``stride``-th frame from ``phase``; the actions in between concatenated."""
    if stride <= 1:
        return clip
    frames, actions = clip.frames[phase:], None if clip.actions is None else clip.actions[phase:]
    n = (frames.shape[0] - 1) // stride
    frames = frames[: n * stride + 1: stride]
    if actions is not None:
        actions = actions[: n * stride].reshape(n, -1)
    return Clip(clip.path, frames, actions)


def load_folder(root: str | Path, size: int, split: str = "train", val_every: int = 10, frame_stride: int = 1,
                with_actions: bool = True, min_frames: int = 2, progress: bool = False,
                all_phases: bool = False, max_files: int | None = None) -> list[Clip]:
    """Clips of one split. ``all_phases`` (training) adds the ``frame_stride - 1`` other
    subsamplings of every video (frames 1, 1+s, ...; 2, 2+s, ...), each a clip of its own.
    ``max_files`` keeps that many files of the split, evenly spaced in sorted order."""
    from tqdm.auto import tqdm

    files = split_roots(root, split, val_every)
    if max_files is not None and 0 < max_files < len(files):
        files = [files[round(i * (len(files) - 1) / max(1, max_files - 1))] for i in range(max_files)]
    clips = []
    for f in tqdm(files, desc=f"read {split} videos", disable=not progress, dynamic_ncols=True):
        full = load_clip(f, size, 1, with_actions)
        for phase in range(frame_stride if all_phases else 1):
            clip = subsample(full, frame_stride, phase)
            if clip.frames.shape[0] >= min_frames:
                clips.append(clip)
    if not clips:
        raise DataError(f"{root}: no {split} video has at least {min_frames} frames (after frame_stride={frame_stride})")
    has = {c.actions is not None for c in clips}
    if len(has) > 1:
        raise DataError(f"{root}: some videos have .actions.npy beside them and some do not")
    return clips
