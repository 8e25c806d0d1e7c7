#!/usr/bin/env python
"""Pool a robustness sweep's perturbed levels per checkpoint and compare the pools two by two with
Fisher's exact test: a small suite (30 episodes per level) rarely separates two policies at one
level, but may over all of them.

    .venv/bin/python scripts/suite_pooled.py runs/robustness/pushcube_rgb_visual*.json \
        [--pair a2a_kp_aux_cj:flow_kp_aux_cj ...] [--json runs/diag/pushcube_rgb_visual_pooled.json]

Reads the files ``tools/benchmark.py robustness`` writes (every file must name its unperturbed level;
files of different suites or levels are refused). Without ``--pair`` every pair is compared.
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def pool(files: list[str]) -> tuple[dict, dict]:
    """(per checkpoint {'nominal': [k, n], 'perturbed': [k, n]}, the sweep's suite / levels)."""
    from a2a_temporal.commands.policy_table import sweep_level_counts

    pools, spec = {}, None
    for f in files:
        try:
            d = json.loads(Path(f).read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{f}: cannot read a sweep file ({e})") from None
        if "nominal_level" not in d or "results" not in d:
            raise ValueError(f"{f}: no 'nominal_level' / 'results' (expected a tools/benchmark.py robustness file)")
        this = (d["suite"], [float(v) for v in d["levels"]])
        if spec is None:
            spec = this
        elif this != spec:
            raise ValueError(f"{f}: suite {this[0]} levels {this[1]}, expected those of the first file {spec}")
        for name in d["results"]:
            if name in pools:
                raise ValueError(f"{f}: checkpoint {name!r} appears in two files")
            pools[name] = {"nominal": [0, 0], "perturbed": [0, 0]}
        for _, is_nominal, counts in sweep_level_counts(d):
            for name, (k, n) in counts.items():
                total = pools[name]["nominal" if is_nominal else "perturbed"]
                total[0] += k
                total[1] += n
    return pools, {"suite": spec[0], "levels": spec[1]}


def main(argv=None) -> int:
    from a2a_temporal.metrics.stats import fisher_exact, wilson_interval
    from a2a_temporal.utils import write_json_atomic

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("files", nargs="+", help="sweep files of one suite and the same levels")
    p.add_argument("--pair", action="append", default=[], metavar="A:B", help="compare only these checkpoints")
    p.add_argument("--json", help="write the pools and comparisons as JSON here")
    a = p.parse_args(argv)
    try:
        pools, spec = pool(a.files)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    pairs = []
    for text in a.pair:
        names = text.split(":")
        bad = [n for n in names if n not in pools]
        if len(names) != 2 or bad:
            print(f"error: --pair {text!r}: expected A:B with A and B among {sorted(pools)}", file=sys.stderr)
            return 2
        pairs.append(tuple(names))
    pairs = pairs or list(itertools.combinations(pools, 2))
    print(f"suite {spec['suite']}, perturbed levels pooled")
    print("| checkpoint | unperturbed | perturbed (pooled) | 95% CI |")
    print("|---|---|---|---|")
    for name, r in pools.items():
        (kn, nn), (k, n) = r["nominal"], r["perturbed"]
        lo, hi = wilson_interval(k, n)
        print(f"| {name} | {kn} / {nn} | {k} / {n} | {lo:.2f}-{hi:.2f} |")
    comparisons = []
    for x, y in pairs:
        (k1, n1), (k2, n2) = pools[x]["perturbed"], pools[y]["perturbed"]
        pv = fisher_exact(k1, n1, k2, n2)
        comparisons.append({"a": x, "b": y, "a_perturbed": [k1, n1], "b_perturbed": [k2, n2], "fisher_p": pv})
        print(f"{x} {k1}/{n1} vs {y} {k2}/{n2}: Fisher exact p = {pv:.3g}")
    if a.json:
        cmd = " ".join(["python", "scripts/suite_pooled.py"] + (argv if argv is not None else sys.argv[1:]))
        write_json_atomic(a.json, {**spec, "files": a.files, "pools": pools, "comparisons": comparisons, "command": cmd})
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
