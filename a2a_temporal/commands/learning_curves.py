"""Learning curves of several training runs in one plot, from their ``metrics.jsonl``.

    python tools/learning_curves.py --run a2a=runs/video_a2a --run flow=runs/video_flow \
        --run regression=runs/video_reg --metric eval/val_psnr --baseline eval/copy_last_psnr \
        --out runs/curves/video.png

Every run's periodic evaluations (``eval/<name>`` records written by the trainer; with
``--train.eval_at_start=true`` the curve starts at iteration 0) become one line: the metric
against the iteration, or, with ``--baseline``, the metric minus the baseline recorded in the
same evaluation (for video: the gain in dB over copying the last frame). Policies work the same
way: ``--metric eval/success_once`` (validation seeds) gives success against iterations.
``--x train_cpu_s`` (or ``train_time_s``) draws the curves against the training time the trainer
records with each evaluation, and ``--target V`` reports when each run first reached V (for
example a VAE's time to a held-out reconstruction PSNR).

Writes the PNG and a JSON beside it (every point, and each run's first, last and best value).
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from a2a_temporal.cli import parse_named_spec, run_cli
from a2a_temporal.errors import ConfigError
from a2a_temporal.metrics.curves import X_AXES, first_reaching, read_curve
from a2a_temporal.utils import save_line_plot, write_json_atomic


@run_cli
def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", action="append", required=True, help="NAME=RUN_DIR (a training output directory)")
    p.add_argument("--metric", default="eval/val_psnr")
    p.add_argument("--baseline", default=None, help="subtract this metric of the same evaluation (e.g. eval/copy_last_psnr)")
    p.add_argument("--x", default="step", choices=list(X_AXES),
                   help="draw against the iteration or the recorded training time (wall or process CPU seconds)")
    p.add_argument("--target", type=float, default=None,
                   help="report the first iteration and time at which each run's value reached this")
    p.add_argument("--out", default="runs/curves/learning_curves.png")
    a = p.parse_args(argv)
    curves, runs = {}, {}
    for spec in a.run:
        name, path, _ = parse_named_spec(spec, "--run", with_steps=False)
        if name in curves:
            raise ConfigError(f"--run {spec!r}: the name {name!r} is used twice")
        curves[name], runs[name] = read_curve(Path(path), a.metric, a.baseline, x=a.x), path
    ylabel = f"{a.metric} - {a.baseline}" if a.baseline else a.metric
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_line_plot(out, {name: ([p[a.x] for p in pts], [p["value"] for p in pts]) for name, pts in curves.items()},
                   X_AXES[a.x], ylabel)
    summary = {name: {"first": pts[0], "last": pts[-1], "best": max(pts, key=lambda p: p["value"])}
               for name, pts in curves.items()}
    if a.target is not None:
        for name, pts in curves.items():
            summary[name]["reaches_target"] = first_reaching(pts, a.target)
    result = {"metric": a.metric, "baseline": a.baseline, "x": a.x, "target": a.target, "runs": runs,
              "curves": curves, "summary": summary,
              "png": str(out),
              "command": " ".join(["python", "tools/learning_curves.py", *map(shlex.quote, sys.argv[1:] if argv is None else argv)])}
    write_json_atomic(out.with_suffix(".json"), result)
    print(f"{'run':>14} {'first':>16} {'last':>16} {'best':>16}   ({ylabel})")
    for name, s in summary.items():
        cell = lambda d: f"{d['value']:.3f} @{d['step']}"
        reach = ""
        if a.target is not None:
            r = s["reaches_target"]
            reach = "   never reaches the target" if r is None else (
                f"   reaches {a.target:g} at iteration {r['step']}" + (f", {a.x} {r[a.x]:.0f}" if a.x in r else ""))
        print(f"{name:>14} {cell(s['first']):>16} {cell(s['last']):>16} {cell(s['best']):>16}{reach}")
    print(f"wrote {out} and {out.with_suffix('.json')}")
    return result


if __name__ == "__main__":
    main()
