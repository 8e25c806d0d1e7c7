#!/usr/bin/env python
"""Write a folder of synthetic videos from FFmpeg's lavfi test sources (through PyAV, no ffmpeg
binary needed): new video domains, each with its own kind of change, for checking the video
folder pipeline on footage it was not tuned on.

    .venv/bin/python scripts/make_lavfi_videos.py --source cellauto --out data/videos/cellauto32
    .venv/bin/python scripts/make_lavfi_videos.py --source gradients --out data/videos/gradients32
        [--videos 50] [--frames 40] [--size 32] [--seed 0]

Sources (each video draws its own seed and parameters from ``--seed``):

* ``cellauto``: a one-dimensional cellular automaton (rule 30, 90, 110 or 150) that scrolls up one
  cell row per frame, the new generation entering at the bottom; 2-pixel cells. Copy-last is very
  poor (every row moves); a predictor that learns the scroll gets most of the frame right.
* ``gradients``: smooth colour gradients that rotate and drift slowly; copy-last is already good
  and the change is small and spatially smooth, as in ordinary camera footage of soft scenes.
* ``life``: lavfi's game of life (its own rule and colours, unlike ``make_life_videos.py``),
  2-pixel cells.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from a2a_temporal.data.video_io import write_video  # noqa: E402

SOURCES = ("cellauto", "gradients", "life")
CELLAUTO_RULES = (30, 90, 110, 150)


def _filter_spec(source: str, rng: np.random.Generator, size: int) -> tuple[str, str, str | None]:
    """(lavfi source name, its arguments, scale arguments or None) for one video."""
    seed = int(rng.integers(0, 2**31 - 1))
    cells = size // 2
    upscale = f"{size}:{size}:flags=neighbor"
    if source == "cellauto":
        rule = int(rng.choice(CELLAUTO_RULES))
        return ("cellauto", f"rule={rule}:size={cells}x{cells}:seed={seed}:rate=10:scroll=1:"
                            f"random_fill_ratio={rng.uniform(0.3, 0.7):.2f}:start_full=1", upscale)
    if source == "gradients":
        n, speed = int(rng.integers(2, 6)), rng.uniform(0.02, 0.06)
        # colours and end points from our own seed: FFmpeg's gradients source draws them itself
        # whatever its seed option says, so without them every generation of a folder differed
        colours = ":".join(f"c{i}=0x{int(c):06x}" for i, c in enumerate(rng.integers(0, 2**24, n)))
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, size, 4))
        return ("gradients", f"size={size}x{size}:seed={seed}:rate=10:n={n}:speed={speed:.3f}:{colours}:"
                             f"x0={x0}:y0={y0}:x1={x1}:y1={y1}", None)
    if source == "life":
        return ("life", f"size={cells}x{cells}:seed={seed}:rate=10:ratio={rng.uniform(0.25, 0.45):.2f}:"
                        "death_color=#202020:life_color=#d0f0a0:mold=0", upscale)
    raise ValueError(f"--source {source!r}: expected one of {', '.join(SOURCES)}")


def render(source: str, args: str, scale: str | None, frames: int) -> np.ndarray:
    """Pull ``frames`` rgb24 frames, uint8 (T, H, W, 3), from one lavfi source graph."""
    import av.filter

    graph = av.filter.Graph()
    node = graph.add(source, args)
    chain = ([("scale", scale)] if scale else []) + [("format", "rgb24")]
    for name, fargs in chain:
        nxt = graph.add(name, fargs)
        node.link_to(nxt)
        node = nxt
    sink = graph.add("buffersink")
    node.link_to(sink)
    graph.configure()
    return np.stack([sink.pull().to_ndarray() for _ in range(frames)]).astype(np.uint8)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--source", required=True, choices=SOURCES)
    p.add_argument("--out", required=True)
    p.add_argument("--videos", type=int, default=50)
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--size", type=int, default=32, help="frame size in pixels (even)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.size < 8 or a.size % 2:
        p.error(f"--size {a.size}: expected an even number >= 8")
    rng = np.random.default_rng(a.seed)
    out = Path(a.out)
    for i in range(a.videos):
        video = render(*_filter_spec(a.source, rng, a.size), a.frames)
        write_video(out / f"{a.source}_{i:03d}.mp4", video, fps=10)
    print(f"wrote {a.videos} {a.source} videos of {a.frames} frames, {a.size} px, to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
