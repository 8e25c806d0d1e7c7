#!/usr/bin/env python
"""Evaluate the runs of a scripts/parallel_train.py pack here (a machine with the simulator).

    cat PACK/runs.tar.part* | tar x          # in the repository: the runs' records and checkpoints
    python scripts/evaluate_parallel.py PACK/parallel_train.json [--only 0,2] [--eval 1 --eval 10]

For each run: ``scripts/select_best.py`` chooses ``best`` among the checkpoints that came back on
the validation seeds, then ``scripts/policy_run.py`` runs the test evaluations with exactly the
arguments and overrides the run was trained with (so the result files name the same command).
Without ``--eval``: one step, and ten steps as well for the recipes that sample from noise
(flow, flow_latent).
"""
from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MULTI_STEP = ("flow", "flow_latent")


def commands(report: dict, only: list[int] | None = None, evals: list[str] | None = None) -> list[list[str]]:
    """The select and test commands (arguments after the interpreter) for the chosen runs."""
    runs = report.get("runs")
    if not isinstance(runs, list) or not runs:
        raise ValueError("parallel_train.json: no 'runs' list")
    picked = range(len(runs)) if only is None else only
    out = []
    for k in picked:
        if not 0 <= k < len(runs):
            raise ValueError(f"--only {k}: the pack has runs 0..{len(runs) - 1}")
        e = runs[k]
        recipe = e["args"][1]
        ev = evals or (["1", "10"] if recipe in MULTI_STEP else ["1"])
        out.append(["scripts/select_best.py", e["dir"], "--quiet"])
        out.append(["scripts/policy_run.py", *e["args"], *[x for s in ev for x in ("--eval", s)], "--", *e["overrides"]])
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("report", help="parallel_train.json of the pack")
    p.add_argument("--only", default="", help="comma-separated run indices (default: all)")
    p.add_argument("--eval", action="append", default=None, help="scripts/policy_run.py --eval spec (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    a = p.parse_args(argv)
    try:
        report = json.loads(Path(a.report).read_text())
        only = [int(x) for x in a.only.split(",")] if a.only else None
        cmds = commands(report, only, a.eval)
    except (OSError, json.JSONDecodeError, ValueError, KeyError, IndexError) as e:
        p.error(f"{a.report}: {e}")
    for cmd in cmds:
        print("+", shlex.join(cmd), flush=True)
        if not a.dry_run:
            subprocess.run([sys.executable, *cmd], check=True, cwd=ROOT)
    return 0


if __name__ == "__main__":
    sys.exit(main())
