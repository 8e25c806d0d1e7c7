#!/usr/bin/env python
"""Write a folder of Conway's-game-of-life videos: a video domain with a known, deterministic,
local rule, far from robot footage (used to check the video folder pipeline on a new domain).

    .venv/bin/python scripts/make_life_videos.py --out data/videos/life32 [--videos 20] [--frames 40]
        [--cells 16] [--cell-px 2] [--density 0.35] [--seed 0]

Each video starts from a random board (toroidal, ``cells`` x ``cells``), one generation per frame,
drawn as light cells of ``cell_px`` x ``cell_px`` pixels on a dark background, written as mp4.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from a2a_temporal.data.video_io import write_video  # noqa: E402


def step(board: np.ndarray) -> np.ndarray:
    """One generation on a torus: birth on 3 neighbours, survival on 2 or 3."""
    n = sum(np.roll(np.roll(board, dy, 0), dx, 1) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx)
    return (n == 3) | (board & (n == 2))


def life_video(rng: np.random.Generator, frames: int, cells: int, cell_px: int, density: float) -> np.ndarray:
    board = rng.random((cells, cells)) < density
    out = np.empty((frames, cells * cell_px, cells * cell_px, 3), np.uint8)
    for t in range(frames):
        img = np.where(board, 220, 25).astype(np.uint8).repeat(cell_px, 0).repeat(cell_px, 1)
        out[t] = img[..., None]
        board = step(board)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--videos", type=int, default=20)
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--cells", type=int, default=16)
    p.add_argument("--cell-px", type=int, default=2)
    p.add_argument("--density", type=float, default=0.35)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    rng = np.random.default_rng(a.seed)
    out = Path(a.out)
    for i in range(a.videos):
        write_video(out / f"life_{i:03d}.mp4", life_video(rng, a.frames, a.cells, a.cell_px, a.density), fps=10)
    print(f"wrote {a.videos} videos of {a.frames} frames, {a.cells * a.cell_px} px, to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
