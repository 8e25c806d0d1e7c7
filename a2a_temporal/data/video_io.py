"""Video files: written with PyAV (H.264 mp4), read with decord (PyAV as fallback)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import DataError

VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov")


def write_video(path: str | Path, frames, fps: float = 20.0, crf: int = 18) -> Path:
    """Write ``frames`` ``(T, H, W, 3)`` uint8 to ``path`` (mp4/H.264, or GIF for ``.gif``).

    Written to a temporary file and renamed, so a reader never sees half a video.
    """
    import av

    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    if path.suffix.lower() == ".gif":
        return write_gif(path, frames, fps)
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:  # yuv420p needs even sizes
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        with av.open(str(tmp), mode="w") as container:
            stream = container.add_stream("libx264", rate=int(round(fps)))
            stream.width, stream.height = frames.shape[2], frames.shape[1]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(crf)}
            for f in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_gif(path: Path, frames: np.ndarray, fps: float) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.gif")
    imgs = [Image.fromarray(f) for f in frames]
    imgs[0].save(tmp, save_all=True, append_images=imgs[1:], duration=int(1000 / fps), loop=0)
    os.replace(tmp, path)
    return path


def read_video(path: str | Path, size: int | None = None) -> np.ndarray:
    """All frames of a video as ``(T, H, W, 3)`` uint8, optionally resized to ``size`` x ``size``.

    decord reads; PyAV is the fallback. A missing, empty or undecodable file is a DataError
    naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty video file")
    frames = None
    errors = []
    try:
        import decord

        kw = {"width": size, "height": size} if size else {}
        vr = decord.VideoReader(str(path), ctx=decord.cpu(0), **kw)
        if len(vr) > 0:
            frames = vr.get_batch(list(range(len(vr)))).asnumpy()
    except Exception as e:  # decord raises its own error types
        errors.append(f"decord: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
    if frames is None:
        try:
            import av

            with av.open(str(path)) as c:
                frames = np.stack([fr.to_ndarray(format="rgb24") for fr in c.decode(video=0)])
            if size:
                frames = resize_frames(frames, size)
        except Exception as e:
            errors.append(f"av: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            frames = None
    if frames is None or len(frames) == 0:
        raise DataError(f"{path}: cannot decode any video frame ({'; '.join(errors) or 'no frames'})")
    return frames


def video_shape(path: str | Path) -> tuple[int, int, int]:
    """``(frames, height, width)`` of a video without decoding all of it (decord; PyAV fallback)."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        raise DataError(f"{path}: video file not found or empty")
    try:
        import decord

        vr = decord.VideoReader(str(path), ctx=decord.cpu(0))
        if len(vr) > 0:
            h, w = vr[0].shape[:2]
            return len(vr), int(h), int(w)
    except Exception:  # decord raises its own error types; PyAV decides below
        pass
    frames = read_video(path)
    return frames.shape[0], frames.shape[1], frames.shape[2]


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).byte().permute(0, 2, 3, 1).numpy()
