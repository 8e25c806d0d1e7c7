#!/usr/bin/env python
"""Recoveries under the ``displace`` suite, from the evaluator's per-episode files: for each file,
the episodes pushed before their first success and how many of those still succeed, beside the
episodes that were not (never pushed, or pushed only after success).

    .venv/bin/python scripts/displace_outcomes.py runs/robustness/stackcube_sources_suite_displace*/*_displace4.json \
        [--json runs/diag/displace_outcomes.json]

Files written since the evaluator records ``push_outcomes`` in its summary give the same numbers;
this reads the per-episode records, so it also serves older files.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from a2a_temporal.envs.perturb import push_outcomes
    from a2a_temporal.utils import write_json_atomic

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", help="per-episode evaluation files of the displace suite")
    p.add_argument("--json", help="write the table as JSON here")
    a = p.parse_args(argv)
    rows = {}
    for f in a.files:
        try:
            d = json.loads(Path(f).read_text())
        except (OSError, json.JSONDecodeError) as e:
            print(f"error: {f}: cannot read an evaluation file ({e})", file=sys.stderr)
            return 2
        if "per_episode" not in d:
            print(f"error: {f}: no 'per_episode' records (expected the evaluator's per-episode file)", file=sys.stderr)
            return 2
        out = push_outcomes(d["per_episode"])
        if out is None:
            print(f"error: {f}: no displace episodes (suite {d.get('suite')!r}, expected 'displace')", file=sys.stderr)
            return 2
        rows[f] = {"suite": d.get("suite"), "level": d.get("level"), "episodes": len(d["per_episode"]), **out}
    print("| file | level | pushed before success: succeed / episodes | not pushed before success |")
    print("|---|---|---|---|")
    for f, r in rows.items():
        b, n = r["pushed_before_success"], r["not_pushed_before_success"]
        print(f"| {f} | {r['level']} | {b['success_once']} / {b['episodes']} | {n['success_once']} / {n['episodes']} |")
    tot = [sum(r[k][m] for r in rows.values()) for k in ("pushed_before_success", "not_pushed_before_success")
           for m in ("success_once", "episodes")]
    print(f"all files: pushed before success {tot[0]} / {tot[1]} succeed; the others {tot[2]} / {tot[3]}")
    if a.json:
        write_json_atomic(a.json, {"files": rows, "command": " ".join(["python", "scripts/displace_outcomes.py"] + (argv if argv is not None else sys.argv[1:]))})
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
