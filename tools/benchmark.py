#!/usr/bin/env python
"""Per-call inference latency of the policy objectives, measured in one run.

    python tools/benchmark.py --config configs/policy/pushcube_state.yaml \
        --variants a2a:1 flow:10 ddpm:100 ddim:10 mip:2 regression:1 --json runs/bench/latency.json

Each variant is the same ActionFlowPolicy (same backbone and encoders) with a different
objective and number of steps. Calls are batch 1 on ``--threads`` CPU threads (1 by default),
timed around ``predict_action_chunk`` only; variants are interleaved round by round so machine
noise hits all of them alike, and ratios are taken against the first variant. Trained
checkpoints can be given with ``--checkpoint name=DIR`` (latency does not depend on the weights,
so fresh weights are used otherwise). Writes JSON and a PNG bar chart.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from a2a_temporal.cli import run_cli  # noqa: E402
from a2a_temporal.config import load_config  # noqa: E402
from a2a_temporal.envs.evaluate import latency_stats  # noqa: E402
from a2a_temporal.utils import versions  # noqa: E402
from a2a_temporal.heads.action import ActionFlowPolicy  # noqa: E402
from a2a_temporal.training.checkpoint import resolve_pretrained  # noqa: E402


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/policy/pushcube_state.yaml")
    p.add_argument("--variants", nargs="+", default=["a2a:1", "flow:10", "ddpm:100", "ddim:10", "mip:2", "regression:1"],
                   help="objective:steps pairs; the first is the reference for ratios")
    p.add_argument("--checkpoint", action="append", default=[], help="objective=DIR: use trained weights")
    p.add_argument("--calls", type=int, default=200, help="timed calls per variant")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (calls are split across them)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default="runs/benchmark/latency.json")
    p.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. --policy.backbone.preset=small")
    a, rest = p.parse_known_args(argv)
    a.overrides = a.overrides + rest
    return a


def build_policies(a):
    from a2a_temporal.policy_setup import TrainPolicyConfig, build_training as build

    cfg = load_config(TrainPolicyConfig, a.config, a.overrides)
    ckpts = dict(s.split("=", 1) for s in a.checkpoint)
    policies, batch = {}, None
    for spec in a.variants:
        name, steps = spec.split(":")
        if name in ckpts:
            pol = ActionFlowPolicy.from_pretrained(resolve_pretrained(ckpts[name]))
            if batch is None:
                _, data, _ = build(cfg)
                batch = data.__getitems__([len(data) // 2])
        else:
            c = load_config(TrainPolicyConfig, a.config, a.overrides + [f"--policy.objective.name={name}"])
            _, data, pol = build(c)
            batch = batch or data.__getitems__([len(data) // 2])
        policies[spec] = (pol.eval(), int(steps))
    return cfg, policies, batch


def plot(path: Path, rows: list[dict]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    names = [r["variant"] for r in rows]
    p50 = [r["p50_ms"] for r in rows]
    ax.barh(names, p50, color=["tab:red"] + ["tab:gray"] * (len(rows) - 1))
    ax.set_xscale("log")
    ax.set_xlabel("ms per action chunk (p50, batch 1)")
    for y, (v, r) in enumerate(zip(p50, rows)):
        ax.text(v, y, f" {v:.2f} ms ({r['ratio_to_reference']:.1f}x)", va="center", fontsize=8)
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@run_cli
def main(argv=None) -> dict:
    a = parse(argv)
    torch.set_num_threads(a.threads)
    cfg, policies, batch = build_policies(a)
    times = {k: [] for k in policies}
    per_round = max(1, a.calls // a.rounds)
    with torch.inference_mode():
        for pol, steps in policies.values():  # warm-up
            for _ in range(3):
                pol.predict_action_chunk(batch, steps)
        for _ in range(a.rounds):
            for key, (pol, steps) in policies.items():
                for _ in range(per_round):
                    t0 = time.perf_counter()
                    pol.predict_action_chunk(batch, steps)
                    times[key].append(time.perf_counter() - t0)
    ref = next(iter(policies))
    ref_p50 = float(np.percentile(times[ref], 50))
    rows = []
    for key, (pol, steps) in policies.items():
        st = latency_stats(times[key])
        rows.append({"variant": key, "objective": pol.objective.name, "steps": steps,
                     "model_calls": pol.objective.model_calls(steps), "p50_ms": st["p50_ms"], "p95_ms": st["p95_ms"],
                     "mean_ms": st["mean_ms"], "ratio_to_reference": st["p50_ms"] / (ref_p50 * 1000)})
    params = sum(p.numel() for p in next(iter(policies.values()))[0].parameters())
    result = {"reference": ref, "threads": a.threads, "batch_size": 1, "calls_per_variant": per_round * a.rounds,
              "config": a.config, "overrides": a.overrides, "backbone_parameters": params,
              "processor": _cpu_name(), "rows": rows, "versions": versions()}
    out = Path(a.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    plot(out.with_suffix(".png"), rows)
    print(f"{'variant':<14}{'calls':>6}{'p50 ms':>10}{'p95 ms':>10}{'x ' + ref:>14}")
    for r in rows:
        print(f"{r['variant']:<14}{r['model_calls']:>6}{r['p50_ms']:>10.3f}{r['p95_ms']:>10.3f}{r['ratio_to_reference']:>14.1f}")
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return result


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor()


if __name__ == "__main__":
    main()
