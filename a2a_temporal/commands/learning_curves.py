"""Learning curves of several training runs in one plot, from their ``metrics.jsonl``.

    python tools/learning_curves.py --run a2a=runs/video_a2a --run flow=runs/video_flow \
        --run regression=runs/video_reg --metric eval/val_psnr --baseline eval/copy_last_psnr \
        --out runs/curves/video.png

Every run's periodic evaluations (``eval/<name>`` records written by the trainer; with
``--train.eval_at_start=true`` the curve starts at iteration 0) become one line: the metric
against the iteration, or, with ``--baseline``, the metric minus the baseline recorded in the
same evaluation (for video: the gain in dB over copying the last frame). Policies work the same
way: ``--metric eval/success_once`` (validation seeds) gives success against iterations.

Writes the PNG and a JSON beside it (every point, and each run's first, last and best value).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from a2a_temporal.cli import parse_named_spec, run_cli
from a2a_temporal.errors import ConfigError
from a2a_temporal.metrics.curves import read_curve
from a2a_temporal.utils import save_line_plot, write_json_atomic


@run_cli
def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", action="append", required=True, help="NAME=RUN_DIR (a training output directory)")
    p.add_argument("--metric", default="eval/val_psnr")
    p.add_argument("--baseline", default=None, help="subtract this metric of the same evaluation (e.g. eval/copy_last_psnr)")
    p.add_argument("--out", default="runs/curves/learning_curves.png")
    a = p.parse_args(argv)
    curves, runs = {}, {}
    for spec in a.run:
        name, path, _ = parse_named_spec(spec, "--run", with_steps=False)
        if name in curves:
            raise ConfigError(f"--run {spec!r}: the name {name!r} is used twice")
        curves[name], runs[name] = read_curve(Path(path), a.metric, a.baseline), path
    ylabel = f"{a.metric} - {a.baseline}" if a.baseline else a.metric
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_line_plot(out, {name: ([st for st, _ in pts], [v for _, v in pts]) for name, pts in curves.items()},
                   "training iteration", ylabel)
    summary = {name: {"first": {"step": pts[0][0], "value": pts[0][1]}, "last": {"step": pts[-1][0], "value": pts[-1][1]},
                      "best": dict(zip(("step", "value"), max(pts, key=lambda sv: sv[1])))}
               for name, pts in curves.items()}
    result = {"metric": a.metric, "baseline": a.baseline, "runs": runs,
              "curves": {n: [{"step": s, "value": v} for s, v in pts] for n, pts in curves.items()}, "summary": summary,
              "png": str(out),
              "command": " ".join(["python", "tools/learning_curves.py", *map(shlex.quote, sys.argv[1:] if argv is None else argv)])}
    write_json_atomic(out.with_suffix(".json"), result)
    print(f"{'run':>14} {'first':>16} {'last':>16} {'best':>16}   ({ylabel})")
    for name, s in summary.items():
        cell = lambda d: f"{d['value']:.3f} @{d['step']}"
        print(f"{name:>14} {cell(s['first']):>16} {cell(s['last']):>16} {cell(s['best']):>16}")
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return result


if __name__ == "__main__":
    main()
