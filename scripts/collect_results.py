#!/usr/bin/env python
"""Copy the small result files of ``runs/`` into ``results/`` (kept in git), so that the README's
tables can be regenerated from a clone without the checkpoints:

    .venv/bin/python scripts/collect_results.py [--runs runs] [--out results]
    .venv/bin/python tools/policy_table.py --runs results/policy --results results --readme README.md

Copied: per policy run ``run_info.json``, ``train_summary.json``, ``run_config.json``,
``metrics.jsonl``, ``eval/test_*.json``, ``eval/val_*.json``, ``eval/diag_*.json`` (diagnostic evaluations outside the tables) and ``eval/select*.json`` (the validation evaluations of a ``best`` chosen after training by scripts/select_best.py); per-episode files and checkpoints stay behind; the
toys' ``toy_results.{json,png}``; every JSON / PNG under ``benchmark/``, ``robustness/`` and
``deploy/`` (no .onnx); ``tools/benchmark_video.py`` results under ``video_bench/``, ``video_robot/``, ``video_robot_flow/``, ``video_robot_long/``, ``video_robot_recipes/``, ``video_robot_source/`` and ``video_robot_seeds/``; each video pipeline's ``pipeline.json``, ``probe.json`` and report;
diagnostics under ``diag/``; the ``metrics.jsonl`` and summaries of the VAE-speed runs (``vae_speed/``) and of the 64 px VAEs (``vae64_*/``). Files are written atomically; nothing under ``--out`` is deleted.
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

PATTERNS = ["policy/*/*/seed*/run_info.json", "policy/*/*/seed*/train_summary.json",
            "policy/*/*/seed*/run_config.json", "policy/*/*/seed*/metrics.jsonl",
            "policy/*/*/seed*/eval/test_*.json", "policy/*/*/seed*/eval/val_*.json",
            "policy/*/*/seed*/eval/diag_*.json", "policy/*/*/seed*/eval/select*.json", "toy*/toy_results.json", "toy*/toy_results.png",
            "benchmark/**/*.json", "benchmark/**/*.png", "robustness/*.json", "robustness/*.png",
            "deploy/*.json", "video_pipeline/*/pipeline.json", "video_pipeline/*/probe.json",
            "video_pipeline/*/report/*.json", "video_pipeline/*/report/*.png",
            "curves/*.json", "curves/*.png", "video_bench/*.json", "video_bench/*.png",
            "video_robot*/*.json", "video_robot*/*.png", "diag/*.json"]
# a VAE run's curve and summaries: the VAE-speed runs and the 64 px VAEs
PATTERNS += [f"{run}/{name}" for run in ("vae_speed/*", "vae64_*")
             for name in ("metrics.jsonl", "vae_summary.json", "train_summary.json", "vae_reconstructions.png")]
LIMIT = 2_000_000  # bytes per file: result files only


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default="runs")
    p.add_argument("--out", default="results")
    a = p.parse_args(argv)
    runs, out = Path(a.runs), Path(a.out)
    if not runs.is_dir():
        print(f"error: --runs {runs}: no such directory", file=sys.stderr)
        return 2
    n = skipped = 0
    for pat in PATTERNS:
        for src in sorted(runs.glob(pat)):
            if not src.is_file() or src.stat().st_size > LIMIT:
                skipped += 1
                continue
            dst = out / src.relative_to(runs)
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f".{dst.name}.tmp")
            shutil.copyfile(src, tmp)
            tmp.replace(dst)
            n += 1
    print(f"copied {n} result files from {runs} to {out} ({skipped} skipped: not files or over {LIMIT} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
