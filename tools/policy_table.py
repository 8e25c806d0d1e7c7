#!/usr/bin/env python
"""Collect trained policies' evaluations into one table (markdown + JSON).

    python tools/policy_table.py [--runs runs] [--out runs/policy_table]

Reads every ``runs/<task>_<objective>/eval_<k>step.json`` with the run's ``train_summary.json``
(as written by scripts/reproduce_policy.sh).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from a2a_temporal.cli import run_cli


@run_cli
def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default="runs")
    p.add_argument("--out", default="runs/policy_table")
    a = p.parse_args(argv)
    rows = []
    for ev in sorted(Path(a.runs).glob("*_*/eval_*step.json")):
        run = ev.parent
        res = json.loads(ev.read_text())
        train = json.loads((run / "train_summary.json").read_text()) if (run / "train_summary.json").is_file() else {}
        rows.append({"run": run.name, "env_id": res["env_id"], "objective": res["objective"], "steps": res["steps"],
                     "episodes": res["episodes"], "success_once": res["success_once"],
                     "success_at_end": res["success_at_end"], "latency_p50_ms": res["latency"].get("p50_ms"),
                     "latency_p95_ms": res["latency"].get("p95_ms"), "train_steps": train.get("steps"),
                     "train_time_min": round(train["train_time_s"] / 60, 1) if "train_time_s" in train else None,
                     "eval_json": str(ev)})
    rows.sort(key=lambda r: (r["env_id"], r["objective"] != "a2a", r["objective"], r["steps"]))
    lines = ["| task | objective | steps | success_once | success_at_end | ms / chunk (p50) | train (min) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['env_id']} | {r['objective']} | {r['steps']} | {r['success_once']:.2f} | "
                     f"{r['success_at_end']:.2f} | {r['latency_p50_ms']:.2f} | {r['train_time_min']} |")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(rows, indent=2))
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return rows


if __name__ == "__main__":
    main()
