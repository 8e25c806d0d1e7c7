#!/usr/bin/env python
"""Write a folder of bouncing-shapes videos: objects that move, the kind of change ordinary footage
is made of (and the classic test of next-frame predictors, after Moving MNIST), as a video domain
for checking the video folder pipeline on footage it was not tuned on.

    .venv/bin/python scripts/make_shapes_videos.py --out data/videos/shapes32
        [--videos 50] [--frames 40] [--size 32] [--seed 0]

Each video draws 1 to 3 shapes (discs and squares, 5 to 11 pixels across at 32 px, one colour
each) on a plain background of its own colour. Each shape moves at a constant 0.5 to 2 pixels per
frame in a random direction and bounces off the frame's edges; later shapes pass in front of
earlier ones. Frames are drawn at 4x and averaged down, so sub-pixel motion shows as soft edges
rather than jumps. Copy-last is off by the motion at every edge; a predictor that learns
"keep moving the way you moved" (and the bounces) gets most of those pixels right.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from a2a_temporal.data.video_io import write_video  # noqa: E402

SUPERSAMPLE = 4


def _bounce(pos: np.ndarray, vel: np.ndarray, lo: float, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Advance one frame, reflecting off [lo, hi] per axis (hi may differ per axis)."""
    pos = pos + vel
    for k in range(2):
        if pos[k] < lo:
            pos[k], vel[k] = 2 * lo - pos[k], -vel[k]
        elif pos[k] > hi[k]:
            pos[k], vel[k] = 2 * hi[k] - pos[k], -vel[k]
    return pos, vel


def shapes_video(rng: np.random.Generator, frames: int, size: int) -> np.ndarray:
    """uint8 (frames, size, size, 3): 1-3 shapes moving at constant speed, bouncing off the edges."""
    s = size * SUPERSAMPLE
    background = rng.integers(0, 90, 3)
    shapes = []
    for _ in range(int(rng.integers(1, 4))):
        extent = rng.uniform(5, 11) * size / 32 * SUPERSAMPLE  # diameter / side, supersampled pixels
        hi = np.array([s - extent, s - extent])
        pos = rng.uniform(0, 1, 2) * hi  # top-left corner (y, x)
        angle, speed = rng.uniform(0, 2 * np.pi), rng.uniform(0.5, 2.0) * size / 32 * SUPERSAMPLE
        vel = speed * np.array([np.sin(angle), np.cos(angle)])
        colour = rng.integers(120, 256, 3)
        shapes.append({"disc": bool(rng.random() < 0.5), "extent": extent, "hi": hi, "pos": pos, "vel": vel,
                       "colour": colour})
    yy, xx = np.mgrid[0:s, 0:s] + 0.5
    out = np.empty((frames, size, size, 3), np.uint8)
    for t in range(frames):
        img = np.broadcast_to(background.astype(np.float32), (s, s, 3)).copy()
        for sh in shapes:
            y0, x0 = sh["pos"]
            e = sh["extent"]
            if sh["disc"]:
                r = e / 2
                mask = (yy - y0 - r) ** 2 + (xx - x0 - r) ** 2 <= r * r
            else:
                mask = (yy >= y0) & (yy < y0 + e) & (xx >= x0) & (xx < x0 + e)
            img[mask] = sh["colour"]
            sh["pos"], sh["vel"] = _bounce(sh["pos"], sh["vel"], 0.0, sh["hi"])
        small = img.reshape(size, SUPERSAMPLE, size, SUPERSAMPLE, 3).mean(axis=(1, 3))
        out[t] = np.clip(np.rint(small), 0, 255).astype(np.uint8)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--videos", type=int, default=50)
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--size", type=int, default=32, help="frame size in pixels (even, >= 16)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.size < 16 or a.size % 2:
        p.error(f"--size {a.size}: expected an even number >= 16")
    if a.videos < 1 or a.frames < 2:
        p.error(f"--videos {a.videos} --frames {a.frames}: expected at least 1 video of at least 2 frames")
    rng = np.random.default_rng(a.seed)
    out = Path(a.out)
    for i in range(a.videos):
        write_video(out / f"shapes_{i:03d}.mp4", shapes_video(rng, a.frames, a.size), fps=10)
    print(f"wrote {a.videos} bouncing-shapes videos of {a.frames} frames, {a.size} px, to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
