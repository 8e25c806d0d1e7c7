"""Build the README's tables from result files (no number is typed by hand).

    python tools/policy_table.py [--runs runs/policy] [--readme README.md] [--out runs/policy_table]

Besides the policy tables below, ``--readme`` regenerates every ``<!-- table:NAME -->`` block
whose result file exists (``RESULT_TABLES``: the toys, the latency / training-cost benchmarks,
robustness sweeps); a block whose file is missing is left as it is.

Reads every run written by ``scripts/policy_run.py``::

    RUNS/<task>/<recipe>[+<tag>]/seed<k>/run_info.json         the commands
                                        /train_summary.json    time, CPU time, load
                                        /metrics.jsonl         validation evaluations
                                        /eval/test_<spec>.json  test evaluation (100 episodes)
                                        /eval/val_<spec>.json   the same on validation seeds (``--split
                                                                validation``: choosing an evaluation setting)

and writes ``OUT.json`` / ``OUT.md``. With ``--readme``, every block between
``<!-- policy-table:NAME -->`` and ``<!-- /policy-table:NAME -->`` is regenerated; NAME is one of
the tables in ``TABLES`` below. Rows aggregate training seeds: the mean success over seeds,
its range ``[min-max]`` when there are several, and the Wilson 95 % interval of all test
episodes pooled.
"""
from __future__ import annotations

import argparse
import json
import math
import re
import statistics
from pathlib import Path

from a2a_temporal.cli import run_cli
from a2a_temporal.envs.seeds import split_of
from a2a_temporal.errors import DataError
from a2a_temporal.metrics.stats import wilson_interval
from a2a_temporal.utils import write_json_atomic

TASK_ORDER = ["pushcube", "pickcube", "stackcube", "peginsertion"]

# Run tags of the peers' flow starts (`policy.source`): their rows form the "sources" table.
SOURCE_TAGS = ("legendre", "adaptive_mix", "last_action_gaussian")

# Table name -> (kind, run-name patterns in display order, tasks or None for all). kind "test":
# test-seed rows; "validation": the in-training (validation-seed) evaluations sweeps select on.
TABLES = {
    "main": ("test", [r"a2a", r"a2a_noise", r"flow", r"flow_latent", r"ddpm", r"ddpm\+noclip", r"ddpm_latent",
                      r"regression", r"mip"],
             None),
    "ablation": ("test", [r"a2a", r"a2a\+(?!repeat_pad|" + "|".join(SOURCE_TAGS) + r").*", r"a2a_k1_nocons(\+.*)?",
                          r"a2a_noise"],
                 ["pushcube", "stackcube"]),
    "sources": ("test", [r"a2a", r"a2a\+noise"] + [rf"a2a\+{t}" for t in SOURCE_TAGS]
                + [r"a2a\+last_action_gaussian_(plain|k1_nocons)"],
                ["pushcube", "pickcube", "stackcube"]),
    "padding": ("test", [r"a2a\+repeat_pad", r"a2a"], None),
    # rgb policies: image pooling (+kp) and the auxiliary object-position loss (+kp_aux) beside the plain runs
    "rgb": ("test", [r"a2a", r"flow", r"a2a\+kp.*", r"flow\+kp.*"], ["pushcube_rgb", "pickcube_rgb"]),
    # Demos that teach recovery (noisy execution, displaced objects) beside the clean-demo runs.
    "demos": ("test", [r"a2a", r"a2a\+(recovery|displace_demos.*)", r"flow", r"flow\+displace_demos.*"], ["pushcube"]),
    # Longer training (more iterations, larger batches and models, on a GPU) beside the CPU budget's rows.
    "long": ("test", [r"a2a", r"flow", r"a2a\+.*_long", r"flow\+(.*_)?long", r"regression\+.*_long"], ["peginsertion"]),
    # Where episodes fail: the task's sub-goal flags (evaluations that recorded them).
    "stages": ("stages", [r".*"], None),
    # Actions executed per policy call, changed at evaluation: validation rows choose, test rows report.
    "replan": ("replan", [r".*"], None),
    "sweep": ("validation", [r".*"], ["pushcube"]),
    # Streaming Flow Policy's source at its own settings (noise width, plain flow loss) beside A2A
    # (and on StackCube beside A2A's own fix there, k1_nocons).
    "sweep-sources": ("validation", [r"a2a", r"a2a\+k1_nocons", r"a2a\+last_action_gaussian.*"],
                      ["pickcube", "stackcube"]),
}


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: unreadable result file ({e})") from None


def collect(runs: Path) -> list[dict]:
    """One record per (run, seed, test evaluation) and one per (run, seed) for validation."""
    recs = []
    for info_path in sorted(runs.glob("*/*/seed*/run_info.json")):
        run = info_path.parent
        info = _load(info_path)
        train = _load(run / "train_summary.json") if (run / "train_summary.json").is_file() else {}
        base = {"task": run.parent.parent.name, "run": run.parent.name, "seed": info.get("seed"),
                "command": info.get("run_command", ""), "train_iterations": train.get("iterations", train.get("steps")),
                "train_cpu_s": train.get("train_cpu_s"), "train_time_s": train.get("train_time_s"),
                "load_avg_mean": train.get("load_avg_mean"), "torch_threads": train.get("torch_threads"),
                "overrides": info.get("overrides", []), "trained_on": info.get("trained_on")}
        vals = []
        if (run / "metrics.jsonl").is_file():
            for line in (run / "metrics.jsonl").read_text().splitlines():
                m = json.loads(line)
                if "eval/success_once" in m:
                    vals.append(m)
        if vals:
            best = max(vals, key=lambda m: (m["eval/success_once"], m["step"]))
            recs.append({**base, "kind": "validation", "val_success_once": best["eval/success_once"],
                         "val_success_at_end": best.get("eval/success_at_end"), "val_step": best["step"],
                         "val_final_success_once": vals[-1]["eval/success_once"]})
        for ev in sorted([*(run / "eval").glob("test_*.json"), *(run / "eval").glob("val_*.json")]):
            res = _load(ev)
            if not res.get("complete"):
                continue
            split = "test" if ev.stem.startswith("test_") else "validation"
            n = res["episodes"]
            obs_mode = (res.get("policy_config") or {}).get("obs_mode", "state")
            env_label = res["env_id"] + ("" if obs_mode == "state" else f" {obs_mode}")  # PickCube-v1 rgb
            command = info.get("eval_commands", {}).get(ev.name, base["command"])
            recs.append({**base, "kind": "test" if split == "test" else "val_eval", "split": split,
                         "command": command, "spec": ev.stem.split("_", 1)[1], "env_id": env_label,
                         "objective": res["objective"], "steps": res.get("num_inference_steps", res.get("steps")),
                         "method": res.get("method"), "calls": res.get("model_calls_per_chunk"),
                         "n_action_steps": res.get("n_action_steps"), "temporal_ensemble": res.get("temporal_ensemble"),
                         "train_n_action_steps": (res.get("policy_config") or {}).get("n_action_steps"),
                         "episodes": n, "once": round(res["success_once"] * n), "at_end": round(res["success_at_end"] * n),
                         "horizon": res.get("horizon"), "registered_horizon": res.get("registered_max_episode_steps"),
                         "seed_split": res.get("seed_split"), "p50_ms": res.get("latency", {}).get("p50_ms"),
                         "nonfinite": res.get("nonfinite_action_steps"), "eval_json": str(ev),
                         "stages_reached": res.get("stages_reached"), "stages_at_end": res.get("stages_at_end")})
    return recs


def _fmt_rate(values: list[float]) -> str:
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.2f}"
    return f"{mean:.2f} [{min(values):.2f}-{max(values):.2f}]"


def aggregate(recs: list[dict], kind: str = "test") -> list[dict]:
    """Test rows (``kind="val_eval"``: evaluations on validation seeds) grouped by (task, run, spec)
    over training seeds."""
    groups: dict[tuple, list[dict]] = {}
    for r in recs:
        if r["kind"] == kind:
            groups.setdefault((r["task"], r["run"], r["spec"]), []).append(r)
    rows = []
    for (task, run, spec), rs in groups.items():
        rs.sort(key=lambda r: r["seed"])
        n = sum(r["episodes"] for r in rs)
        once = sum(r["once"] for r in rs)
        lo, hi = wilson_interval(once, n)
        cpu = [r["train_cpu_s"] for r in rs if r["train_cpu_s"] is not None]
        p50 = [r["p50_ms"] for r in rs if r["p50_ms"] is not None]
        seeds = [r["seed"] for r in rs]
        cmd = rs[0]["command"]
        if len(seeds) > 1:
            cmd = re.sub(r"--seed \d+", "--seed {" + ",".join(map(str, seeds)) + "}", cmd)
        rows.append({"task": task, "env_id": rs[0]["env_id"], "run": run, "spec": spec, "split": rs[0]["split"],
                     "objective": rs[0]["objective"], "steps": rs[0]["steps"], "method": rs[0]["method"],
                     "calls": rs[0]["calls"], "seeds": seeds, "n_action_steps": rs[0].get("n_action_steps"),
                     "temporal_ensemble": rs[0].get("temporal_ensemble"),
                     "train_n_action_steps": rs[0].get("train_n_action_steps"), "episodes_per_seed": rs[0]["episodes"],
                     "success_once": [r["once"] / r["episodes"] for r in rs],
                     "success_at_end": [r["at_end"] / r["episodes"] for r in rs],
                     "success_once_mean": once / n, "success_once_ci95": [lo, hi],
                     "success_at_end_mean": sum(r["at_end"] for r in rs) / n,
                     "horizon": rs[0]["horizon"], "registered_horizon": rs[0]["registered_horizon"],
                     "seed_split": rs[0]["seed_split"], "p50_ms": statistics.median(p50) if p50 else None,
                     "train_iterations": rs[0]["train_iterations"],
                     "nonfinite_action_steps": (None if any(r.get("nonfinite") is None for r in rs)
                                                else sum(r["nonfinite"] for r in rs)),
                     "train_cpu_min": statistics.fmean(cpu) / 60 if cpu else None,
                     "trained_on": rs[0].get("trained_on"),
                     "train_wall_min": (statistics.fmean(r["train_time_s"] for r in rs) / 60
                                        if all(r.get("train_time_s") is not None for r in rs) else None),
                     "stages_reached": _pooled_stages(rs, "stages_reached"),
                     "stages_at_end": _pooled_stages(rs, "stages_at_end"),
                     "timed_alone": all((r["load_avg_mean"] or 99) <= (r["torch_threads"] or 0) + 0.6 for r in rs),
                     "command": cmd})
    return rows


def _pooled_stages(rs: list[dict], field: str) -> dict | None:
    """Sub-goal rates pooled over the seeds' episodes; None unless every seed's evaluation has them."""
    if not rs or any(not r.get(field) for r in rs):
        return None
    n = sum(r["episodes"] for r in rs)
    return {k: sum(r[field].get(k, 0.0) * r["episodes"] for r in rs) / n for k in sorted(rs[0][field])}


def _task_key(task: str) -> tuple[int, bool, str]:
    """Tasks in TASK_ORDER, each task's rgb variant (``pushcube_rgb``) after its state rows."""
    base = task.removesuffix("_rgb")
    return (TASK_ORDER.index(base) if base in TASK_ORDER else len(TASK_ORDER), base != task, task)


def _order(rows: list[dict], patterns: list[str], key="run") -> list[dict]:
    out = []
    for pat in patterns:
        rx = re.compile(pat + r"$")
        for r in rows:
            if rx.match(r[key]) and r not in out:
                out.append(r)
    return sorted(out, key=lambda r: (_task_key(r["task"]), [i for i, p in enumerate(patterns)
                                                            if re.match(p + "$", r[key])][0], r.get("steps") or 0))


def sampler_text(r: dict) -> str:
    steps, calls, method = r["steps"], r["calls"], r["method"]
    n_exec = r.get("n_action_steps")
    replan = (f", re-plans every {n_exec} action{'s' if n_exec > 1 else ''}"
              if n_exec is not None and n_exec != r.get("train_n_action_steps") else "")
    if r.get("temporal_ensemble") is not None:
        replan += f", temporal ensembling (m = {r['temporal_ensemble']:g})"
    if r["objective"] in ("regression", "mip"):
        return f"{calls} call{'s' if calls > 1 else ''}{replan}"
    name = f"{method} " if method in ("ddim", "ddpm", "midpoint", "heun") else ""
    return f"{name}{steps} step{'s' if steps != 1 else ''} ({calls} call{'s' if calls > 1 else ''}){replan}"


def markdown_test(rows: list[dict], split: bool = False) -> str:
    """The test-row table; ``split`` adds a column naming the seeds (validation or test)."""
    lines = ["| task (horizon) | recipe | sampler | " + ("seeds split | " if split else "") + "seeds | success_once "
             "| 95% CI | success_at_end | NaN steps | train CPU-min | command |",
             "|---" * (11 if split else 10) + "|"]
    for r in rows:
        lo, hi = r["success_once_ci95"]
        cpu = f"{r['train_cpu_min']:.0f}" if r["train_cpu_min"] is not None else "-"
        if r.get("trained_on") and r.get("train_wall_min") is not None:  # not CPU training: its wall time there
            cpu = f"{r['train_wall_min']:.0f} wall-min on {r['trained_on']}"
        nan = "-" if r.get("nonfinite_action_steps") is None else str(r["nonfinite_action_steps"])
        lines.append(f"| {r['env_id']} ({r['horizon']}; reg. {r['registered_horizon']}) | {r['run']} | "
                     f"{sampler_text(r)} | " + (f"{r['split']} | " if split else "")
                     + f"{len(r['seeds'])} | {_fmt_rate(r['success_once'])} | "
                     f"{lo:.2f}-{hi:.2f} | {_fmt_rate(r['success_at_end'])} | {nan} | {cpu} | `{r['command']}` |")
    return "\n".join(lines)


def markdown_stages(rows: list[dict]) -> str:
    """One table per task: each sub-goal flag's rate as 'ever reached / held at the last step'."""
    blocks = []
    for task in sorted({r["task"] for r in rows}, key=_task_key):
        rs = [r for r in rows if r["task"] == task]
        flags = list(rs[0]["stages_reached"])
        lines = ["| task (horizon) | recipe | sampler | seeds | " + " | ".join(f"{f} (ever / at end)" for f in flags)
                 + " | success_once | success_at_end |", "|---" * (6 + len(flags)) + "|"]
        for r in rs:
            cells = [f"{r['stages_reached'].get(f, math.nan):.2f} / {(r['stages_at_end'] or {}).get(f, math.nan):.2f}"
                     for f in flags]
            lines.append(f"| {r['env_id']} ({r['horizon']}) | {r['run']} | {sampler_text(r)} | {len(r['seeds'])} | "
                         + " | ".join(cells) + f" | {r['success_once_mean']:.2f} | {r['success_at_end_mean']:.2f} |")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def markdown_validation(recs: list[dict]) -> str:
    lines = ["| task | run | overrides | val. success_once (best) | at iteration | val. success_at_end |",
             "|---|---|---|---|---|---|"]
    for r in recs:
        ov = " ".join(r["overrides"]) or "-"
        at_end = "-" if r["val_success_at_end"] is None else f"{r['val_success_at_end']:.2f}"
        lines.append(f"| {r['task']} | {r['run']} | `{ov}` | {r['val_success_once']:.2f} | {r['val_step']} | "
                     f"{at_end} |")
    return "\n".join(lines)


def render(name: str, recs: list[dict], rows: list[dict]) -> str:
    kind, patterns, tasks = TABLES[name]
    keep = (lambda r: tasks is None or r["task"] in tasks)
    if kind == "validation":
        vals = [r for r in recs if r["kind"] == "validation" and r["seed"] == 0 and keep(r)]
        return markdown_validation(_order(vals, patterns))
    if kind == "replan":
        both = rows + aggregate(recs, "val_eval")
        changed = {(r["task"], r["run"]) for r in both
                   if r.get("n_action_steps") not in (None, r.get("train_n_action_steps"))
                   or r.get("temporal_ensemble") is not None}
        picked = sorted((r for r in both if keep(r) and (r["task"], r["run"]) in changed),
                        key=lambda r: (_task_key(r["task"]), r["run"], r["split"] != "validation", r["steps"] or 0,
                                       -(r.get("n_action_steps") or r.get("train_n_action_steps") or 10**6),
                                       r.get("temporal_ensemble") is not None, r.get("temporal_ensemble") or 0))
        return markdown_test(picked, split=True) if picked else "_No evaluation has changed the re-planning interval yet._"
    if kind == "stages":
        staged = sorted((r for r in rows if keep(r) and r.get("stages_reached")),
                        key=lambda r: (_task_key(r["task"]), r["run"] != "a2a", r["run"], r["steps"] or 0))
        return markdown_stages(staged) if staged else "_No evaluation has recorded sub-goal flags yet._"
    picked = _order([r for r in rows if keep(r)], patterns)
    # Tables that compare against A2A show a task only where the compared run exists.
    anchor = {"padding": ("repeat_pad",), "sources": SOURCE_TAGS}.get(name)
    if anchor:
        present = {r["task"] for r in picked if r["run"].split("+")[-1] in anchor}
        picked = [r for r in picked if r["task"] in present]
    if not picked:
        return "_No result files for this table yet (its runs have not been made)._"
    return markdown_test(picked)


# ----------------------------------------------------------------------------- other result files

def _toy(d: dict) -> str:
    errs = d["error_to_true_next"]
    names = list(errs)
    steps = sorted({int(k) for e in errs.values() for k in e})
    lines = ["| Euler steps | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for k in steps:
        lines.append(f"| {k} | " + " | ".join(f"{errs[n][str(k)]:.4f}" if str(k) in errs[n] else "-"
                                             for n in names) + " |")
    return "\n".join(lines)


def _toy_bimodal(d: dict) -> str:
    lines = ["| sampler | mode A | mode B | between the modes | elsewhere | error to the nearest mode |",
             "|---|---|---|---|---|---|"]
    for key, f in d["mode_fractions"].items():
        name, k = key.split("@")
        err = d["error_to_nearest_mode"][name].get(k)
        label = f"{name}, 1 call" if name in ("regression", "mip") else f"{name}, {k} step{'s' if k != '1' else ''}"
        lines.append(f"| {label} | {f['mode_a']:.2f} | {f['mode_b']:.2f} | {f['between']:.2f} | {f['other']:.2f} | "
                     f"{err:.3f} |")
    return "\n".join(lines)


def _train_cost(d: dict) -> str:
    lines = ["| recipe | space | s / iteration | CPU s / iteration | x a2a | minutes for the budget |",
             "|---|---|---|---|---|---|"]
    for r in d["rows"]:
        lines.append(f"| {r['recipe']} | {r['space']} | {r['s_per_iteration']:.3f} | {r['cpu_s_per_iteration']:.3f} | "
                     f"{r['ratio_to_first']:.2f} | {r['projected_min']:.1f} ({r['budget_iterations']} it.) |")
    return "\n".join(lines)


def _latency(d: dict) -> str:
    lines = ["| variant | model calls | p50 ms | p95 ms | x reference |", "|---|---|---|---|---|"]
    for r in d["rows"]:
        lines.append(f"| {r['variant']} | {r['model_calls']} | {r['p50_ms']:.3f} | {r['p95_ms']:.3f} | "
                     f"{r['ratio_to_reference']:.1f} |")
    f = d["floor"]
    lines.append(f"| floor: bare backbone forward | 1 | {f['p50_ms']:.3f} | {f['p95_ms']:.3f} | "
                 f"{f['p50_ms'] / d['rows'][0]['p50_ms']:.2f} |")
    return "\n".join(lines)


def _runtimes(d: dict) -> str:
    lines = ["| runtime | one-step p50 ms | floor p50 ms | floor_ratio | note |", "|---|---|---|---|---|"]
    for name, r in d["runtimes"].items():
        if "error" in r:
            lines.append(f"| {name} | - | - | - | failed: {r['error']} |")
            continue
        note = {"ort": f"ONNX Runtime, {r.get('exporter', '')} export, max abs diff vs eager "
                       f"{r.get('max_abs_diff_vs_eager', float('nan')):.1e}",
                "compile": f"torch.compile ({r.get('compile_s', '?')} s to compile)",
                "eager": "PyTorch eager, folded inference path"}.get(name, "")
        lines.append(f"| {name} | {r['policy']['p50_ms']:.3f} | {r['floor']['p50_ms']:.3f} | {r['floor_ratio']:.2f} | "
                     f"{note} |")
    b = d.get("breakdown", {}).get("folded", {})
    if "stages_ms" in b:
        parts = ", ".join(f"{k} {v:.3f}" for k, v in b["stages_ms"].items())
        lines.append(f"\nEager breakdown of one call (ms): {parts}, overhead {b['overhead_ms']:.3f} "
                     f"(total {b['total_ms']:.3f}).")
    return "\n".join(lines)


def _batch_sweep(d: dict) -> str:
    rows = d.get("batch_sweep", {}).get("rows", {})
    runtimes = [rt for rt, r in rows.items() if isinstance(r, list) and r]
    if not runtimes:
        return "(no batch sweep in the result file)"
    sizes = sorted({r["batch"] for rt in runtimes for r in rows[rt]})
    lines = ["| batch | " + " | ".join(f"{rt}: chunks/s (x batch 1)" for rt in runtimes) + " |",
             "|---" * (len(runtimes) + 1) + "|"]
    for bsz in sizes:
        cells = []
        for rt in runtimes:
            r = next((x for x in rows[rt] if x["batch"] == bsz), None)
            cells.append(f"{r['chunks_per_s']:.0f} ({r['ratio_to_batch1']:.1f}x)" if r else "-")
        lines.append(f"| {bsz} | " + " | ".join(cells) + " |")
    b = d.get("batch_sweep", {})
    if "ceiling_chunks_per_s" in b:
        ratios = ", ".join(f"{k} {v:.1f}x" for k, v in b.get("ceiling_ratio_to_batch1", {}).items())
        lines.append(f"\nCompute ceiling in the same run: {b['flops_per_chunk'] / 1e6:.1f} MFLOP per chunk at "
                     f"{b['matmul_gflops']:.0f} GFLOP/s (a plain matmul, 1 thread) = {b['ceiling_chunks_per_s']:.0f} "
                     f"chunks/s, i.e. {ratios} the batch-1 throughput at most.")
    return "\n".join(lines)


def _robustness(d: dict) -> str:
    levels = d["levels"]
    seed_split = split_of(d["seed"]) if d.get("seed") is not None else "test"
    notes = [f"{seed_split} seeds {d['seed']}+"] if seed_split != "test" else []  # e.g. a setting chosen on validation
    notes += [f"horizon {d['max_episode_steps']}"] if d.get("max_episode_steps") else []
    horizon = f" ({', '.join(notes)})" if notes else ""
    lines = [f"| policy{horizon} | " + " | ".join(f"{d['suite']} {lv:g}" for lv in levels) + " |",
             "|---" * (len(levels) + 1) + "|"]
    per_call = d.get("n_action_steps") or {}  # NAME=CKPT:STEPS/N: N actions executed per policy call
    label = {name: f"{name} ({per_call[name]} action{'s' if per_call[name] > 1 else ''} per call)" if name in per_call
             else name for name in d["results"]}
    for name, rows in d["results"].items():
        lines.append(f"| {label[name]} | " + " | ".join(
            f"{r['success_once']:.2f} ({r['success_once_ci95'][0]:.2f}-{r['success_once_ci95'][1]:.2f})"
            for r in rows) + " |")
    split = [(name, lv, r) for name, rows in d["results"].items() for lv, r in zip(levels, rows)
             if r.get("by_direction")]
    if split:  # displace suite: successes / episodes by where the push sent the object
        lines += ["", "| policy, level | pushed toward the goal | sideways | away from the goal |", "|---|---|---|---|"]
        for name, lv, r in split:
            b = r["by_direction"]
            lines.append(f"| {label[name]}, {d['suite']} {lv:g} | " + " | ".join(
                f"{b[k]['success_once']}/{b[k]['episodes']}" for k in ("toward_goal", "sideways", "away_from_goal"))
                + " |")
    return "\n".join(lines)


def _robustness_files(d: dict) -> str:
    """Several robustness result files (a glob marker), each table followed by its command."""
    return "\n\n".join(f"{_robustness(r)}\n\n`{r['command']}`" for r in d.values())


_SEED_SUFFIX = re.compile(r"^(.+)_seed(\d+)$")


def sweep_level_counts(sweep: dict) -> list[tuple[float, bool, dict[str, tuple[int, int]]]]:
    """Per level of a ``tools/benchmark.py robustness`` sweep: (level, whether it is the sweep's
    ``nominal_level``, {checkpoint: (successes, episodes)}). The one place that turns a sweep's rates
    back into counts and decides which level is unperturbed."""
    out = []
    for i, lv in enumerate(sweep["levels"]):
        counts = {n: (round(rows[i]["success_once"] * rows[i]["episodes"]), rows[i]["episodes"])
                  for n, rows in sweep["results"].items()}
        out.append((float(lv), math.isclose(float(lv), float(sweep["nominal_level"])), counts))
    return out


def _robustness_ranking(d: dict) -> str:
    """One row per policy over sweeps of the same checkpoints under several suites: the unperturbed
    success, success at every perturbed level, and all perturbed episodes pooled; policies ranked on
    the pooled rate.

    Files of the same suite are merged (a later sweep may add checkpoints, at the same levels), and
    every policy must appear in every suite. A checkpoint named ``NAME_seedK`` is training seed K of
    ``NAME`` (``NAME`` alone is its first seed): such a row shows the mean over seeds with the
    [lowest-highest] seed in brackets, a single seed its Wilson 95 % interval in parentheses. The last
    column is each seed's pooled perturbed rate divided by its own unperturbed rate (mean and range over
    seeds): how much of its success a policy keeps, apart from where it starts. A sweep names its
    unperturbed level (``nominal_level``); a file without one is refused."""
    suites: dict[str, dict] = {}
    for key, r in d.items():
        if "nominal_level" not in r:
            raise DataError(f"{key}.json: no 'nominal_level' (a sweep written before the ranking table existed)")
        merged = suites.setdefault(r["suite"], {"levels": list(r["levels"]), "nominal_level": r["nominal_level"],
                                                "results": {}, "file": key})
        if [float(v) for v in r["levels"]] != [float(v) for v in merged["levels"]]:
            raise DataError(f"{key}.json: {r['suite']} levels {r['levels']}, expected those of "
                            f"{merged['file']}.json {merged['levels']}")
        merged["results"].update(r["results"])
    names = sorted({n for m in suites.values() for n in m["results"]})
    for suite, m in suites.items():
        if set(m["results"]) != set(names):
            raise DataError(f"{m['file']}.json: suite {suite} lacks policies "
                            f"{sorted(set(names) - set(m['results']))} that other suites have")
    if not names:
        return ""
    # per checkpoint: (successes, episodes) unperturbed (nominal levels pooled) and per perturbed level
    nominal, cols = {n: [0, 0] for n in names}, []
    for suite, m in suites.items():
        for lv, is_nominal, counts in sweep_level_counts(m):
            if is_nominal:
                for n, (k, e) in counts.items():
                    nominal[n][0] += k
                    nominal[n][1] += e
            else:
                cols.append((f"{suite} {lv:g}", counts))
    pooled = {n: (sum(c[n][0] for _, c in cols), sum(c[n][1] for _, c in cols)) for n in names}
    groups: dict[str, list[str]] = {}
    for n in names:
        match = _SEED_SUFFIX.match(n)
        groups.setdefault(match.group(1) if match else n, []).append(n)

    def cell(counts: list) -> str:  # counts: (successes, episodes) of each seed's checkpoint
        counts = [(k, e) for k, e in counts if e]
        if not counts:
            return "-"
        if len(counts) == 1:
            lo, hi = wilson_interval(*counts[0])
            return f"{counts[0][0] / counts[0][1]:.2f} ({lo:.2f}-{hi:.2f})"
        rates = [k / e for k, e in counts]
        return f"{statistics.mean(rates):.2f} [{min(rates):.2f}-{max(rates):.2f}]"

    def score(group: str) -> float:
        return statistics.mean(pooled[n][0] / max(pooled[n][1], 1) for n in groups[group])

    def kept(members: list[str]) -> str:  # per seed: pooled perturbed rate / its own unperturbed rate
        ratios = [(pooled[n][0] / pooled[n][1]) / (nominal[n][0] / nominal[n][1])
                  for n in members if pooled[n][1] and nominal[n][0]]
        if not ratios:
            return "-"
        if len(ratios) == 1:
            return f"{ratios[0]:.2f}"
        return f"{statistics.mean(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]"

    lines = ["| rank | policy | seeds | unperturbed | " + " | ".join(c for c, _ in cols)
             + " | all perturbed episodes | kept (perturbed / unperturbed) |",
             "|---" * (len(cols) + 6) + "|"]
    for rank, g in enumerate(sorted(groups, key=lambda g: (-score(g), g)), 1):
        members = groups[g]
        lines.append(f"| {rank} | {g} | {len(members)} | {cell([nominal[n] for n in members])} | " + " | ".join(
            cell([c[n] for n in members]) for _, c in cols) + f" | {cell([pooled[n] for n in members])} | "
            f"{kept(members)} |")
    return "\n".join(lines)


def _export(d: dict) -> str:
    return (f"Parity of `{d['out']}` ({d['exporter']} exporter, {d['nodes']} nodes): max abs action difference "
            f"**{d['max_abs_diff']:.1e}** against PyTorch over {d['batches']} recorded batches ({d['windows']} demo "
            f"windows), tolerance {d.get('tolerance', 1e-4):g}.")


def _eval_envs(d: dict) -> str:
    lines = ["| environments | episodes | policy calls | wall s | s / episode | policy p50 ms (batch) |",
             "|---|---|---|---|---|---|"]
    for r in sorted(d.values(), key=lambda r: r["num_envs"]):
        lines.append(f"| {r['num_envs']} | {r['episodes']} | {r['policy_calls']} | {r['wall_time_s']:.1f} | "
                     f"{r['wall_time_s'] / r['episodes']:.2f} | {r['latency']['p50_ms']:.2f} "
                     f"({r['latency']['batch_size_max']}) |")
    return "\n".join(lines)


def _video_throughput(d: dict) -> str:
    lines = ["| model | steps | model calls / frame | frames / s with the VAE | frames / s latent-only |",
             "|---|---|---|---|---|"]
    for name, m in d["models"].items():
        for r in m.get("throughput", []):
            lines.append(f"| {name} | {r['steps']} | {r['model_calls_per_frame']} | {r['with_vae_fps']:.1f} | "
                         f"{r['latent_only_fps']:.1f} |")
    lines.append(f"\n{d['threads']} thread(s), {d['frames']}-frame rollouts, batch 1.")
    for name, m in d["models"].items():
        by = {r["steps"]: r for r in m.get("throughput", [])}
        if 1 in by and 10 in by:
            lines.append(f"{name}: one step gives {by[1]['latent_only_fps'] / by[10]['latent_only_fps']:.1f}x the "
                         f"frames / s of ten steps latent-only, {by[1]['with_vae_fps'] / by[10]['with_vae_fps']:.1f}x "
                         "with the VAE.")
    return "\n".join(lines)


def _video_pipeline(d: dict) -> str:
    lines = ["| videos | size, stride | VAE recon. PSNR, held-out | true next latent (ceiling) | copy-last | a2a, 1 step | "
             "baselines (gain over copy-last) | verdict | command |", "|---|---|---|---|---|---|---|---|---|"]
    for r in d.values():
        p = r["probe"]
        base = ", ".join(f"{b} {v['steps']} step{'s' if v['steps'] > 1 else ''}: {v['gain_db']:+.2f} dB"
                         for b, v in r.get("baselines", {}).items()) or "-"
        vae = f"{r['vae_reconstruction_psnr']:.2f} dB" if r.get("vae_reconstruction_psnr") is not None else "-"
        if r.get("vae_train_reconstruction_psnr") is not None:
            vae += f" (training frames {r['vae_train_reconstruction_psnr']:.2f})"
        ceil = f"{r['copy_last_psnr'] + r['true_latent_gain_db']:.2f} dB" if "true_latent_gain_db" in r else "-"
        ci = (f"; per video {r['video_gain_db']:+.2f}, {r['gain_ci95'][0]:+.2f} to {r['gain_ci95'][1]:+.2f}"
              if r.get("gain_ci95") and r.get("video_gain_db") is not None else "")
        files = (f"{p['videos']} files, {r['heldout_split']['videos']} held out; scored on all {r['held_out_videos']} "
                 f"files of {r['test_videos']}" if r.get("test_videos") else f"{p['videos']} files, {r['held_out_videos']} held out")
        lines.append(f"| {r['videos']} ({files}) | {p['size']} px, "
                     f"{p['frame_stride']} | {vae} | {ceil} | {r['copy_last_psnr']:.2f} dB | {r['next_frame_psnr']:.2f} dB "
                     f"({r['gain_db']:+.2f}{ci}) | {base} | {r['verdict']} | `{r['command']}` |")
    return "\n".join(lines)


def _video_bench(d: dict) -> str:
    """tools/benchmark_video.py result files: teacher-forced next-frame PSNR of each model against
    copy-last on the files scored (held-out by default, ``--split train`` for the training files)."""
    lines = []
    for key, r in d.items():
        split = "held-out files" if r.get("split", "val") == "val" else "training files"
        n = r.get("scored_videos", r.get("held_out_videos"))
        if lines:
            lines.append("")
        lines += [f"`{Path(key).name}`: {r['videos']}, {n} {split}", "",
                  "| model | steps | next-frame PSNR | copy-last | gain | gain per video [95 % interval over videos] | "
                  "true next latent (ceiling) | rollout gain over copy-last: worst horizon / last |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, m in r["models"].items():
            ci = (f"{m['video_gain_db']:+.2f} dB [{m['gain_ci95'][0]:+.2f}, {m['gain_ci95'][1]:+.2f}]"
                  if m.get("gain_ci95") and m.get("video_gain_db") is not None else "-")
            roll, copy = m.get("rollout_psnr") or [], r.get("copy_last_rollout_psnr") or []
            gains = [a - b for a, b in zip(roll, copy)]
            rg = (f"{min(gains):+.2f} dB (h{gains.index(min(gains)) + 1}) / {gains[-1]:+.2f} dB (h{len(gains)})"
                  if gains else "-")
            lines.append(f"| {name} | {m['steps']} | {m['next_frame_psnr']:.2f} dB | {r['copy_last_next_frame_psnr']:.2f} dB | "
                         f"{m['next_frame_psnr'] - r['copy_last_next_frame_psnr']:+.2f} dB | {ci} | "
                         f"{m['true_latent_psnr']:.2f} dB | {rg} |")
        lines += ["", f"`{r['command']}`"]
    return "\n".join(lines)


def _curves(d: dict) -> str:
    """Learning curves (tools/learning_curves.py JSON files): one row per run, one column per iteration."""
    lines = []
    for key, c in d.items():
        steps = sorted({p["step"] for pts in c["curves"].values() for p in pts})
        metric = c["metric"] + (f" - {c['baseline']}" if c.get("baseline") else "")
        if lines:
            lines.append("")
        lines += [f"`{Path(key).name}` ({metric}):", "",
                  "| run | " + " | ".join(f"it. {s}" for s in steps) + " |", "|---" * (len(steps) + 1) + "|"]
        for name, pts in c["curves"].items():
            by = {p["step"]: p["value"] for p in pts}
            lines.append(f"| {name} | " + " | ".join(f"{by[s]:.2f}" if s in by else "-" for s in steps) + " |")
        if c.get("command"):
            lines += ["", f"`{c['command']}`"]
    return "\n".join(lines)


def _vae_speed(r: dict) -> str:
    """scripts/vae_speed.py: seconds per VAE training iteration per variant, timed in one run."""
    lines = ["| variant | parameters | s / iteration | process CPU s / iteration | speed-up |", "|---|---|---|---|---|"]
    for name, v in r["rows"].items():
        lines.append(f"| {name} | {v['parameters'] / 1e6:.2f}M | {v['s_per_it']:.3f} | {v['cpu_s_per_it']:.3f} | "
                     f"{v['speedup']:.2f}x |")
    lines += ["", f"{r['threads']} thread(s), batch {r['batch']}, {r['size']} px, median of {r['rounds']} interleaved rounds "
              f"of {r['iters']} iterations."]  # the command follows from update_result_tables
    return "\n".join(lines)


def _time_to_target(d: dict) -> str:
    """Learning-curve JSON files written with ``--target``: when each run first reached the target,
    in iterations, training wall time and process CPU time, and where it ended."""
    lines = []
    for key, c in d.items():
        if c.get("target") is None:
            raise DataError(f"{key}: written without --target; tools/learning_curves.py --target V gives the time to V")
        metric = c["metric"] + (f" - {c['baseline']}" if c.get("baseline") else "")
        if lines:
            lines.append("")
        lines += [f"`{Path(key).name}`: first evaluation with {metric} >= {c['target']:g}", "",
                  "| run | reaches it at iteration | training wall time | training CPU time | last evaluation: iteration, value, CPU time |",
                  "|---|---|---|---|---|"]
        mins = lambda p, k: f"{p[k] / 60:.1f} min" if k in p else "-"  # noqa: E731
        for name, s in c["summary"].items():
            r, last = s.get("reaches_target"), s["last"]
            hit = (f"{r['step']} | {mins(r, 'train_time_s')} | {mins(r, 'train_cpu_s')}" if r else
                   "not reached | - | -")
            lines.append(f"| {name} | {hit} | {last['step']}, {last['value']:.2f}, {mins(last, 'train_cpu_s')} |")
        if c.get("command"):
            lines += ["", f"`{c['command']}`"]
    return "\n".join(lines)


def _placement(d: dict) -> str:
    """scripts/stackcube_placement.py results: where each policy let go of cube A."""
    lines = ["| checkpoint | steps, actions per call | episodes: success / failure (released lifted) | "
             "offset at release, successes: median (range) | failures | height at release (median) |",
             "|---|---|---|---|---|---|"]
    cm = lambda x: f"{100 * x:.1f}"  # noqa: E731
    for key, r in d.items():
        s, f = r["summary"]["success"], r["summary"]["failure"]
        cell = lambda g: (f"{cm(g['xy_offset_median_m'])} cm ({cm(g['xy_offset_min_m'])}-{cm(g['xy_offset_max_m'])})"  # noqa: E731
                          if g["released_lifted"] else "-")
        heights = [g["height_median_m"] for g in (s, f) if g["height_median_m"] is not None]
        lines.append(f"| `{r['checkpoint']}` | {r['steps']}, {r['n_action_steps']} | {s['episodes']} / {f['episodes']} "
                     f"({f['released_lifted']}) | {cell(s)} | {cell(f)} | "
                     f"{' / '.join(cm(h) + ' cm' for h in heights)} |")
    for r in d.values():
        lines += ["", f"`{r['command']}`"]
    return "\n".join(lines)


_DISPLACE_FILE = re.compile(r"^(.+)_displace[0-9.]+$")  # CHECKPOINT_displaceLEVEL (the evaluator's file name)


def _displace_outcomes(d: dict) -> str:
    """scripts/displace_outcomes.py results (one or more files): per policy and displace level, the
    episodes pushed before their first success and how many still succeed (each training seed's
    count in brackets, ``NAME_seedK`` joining ``NAME``), beside the episodes that were not; ranked on
    the pooled recovery rate. A checkpoint counted in two files is refused, not added twice."""
    groups: dict[tuple[str, float], dict[str, dict]] = {}
    for key, r in d.items():
        for path, row in r["files"].items():
            m = _DISPLACE_FILE.match(Path(path).stem)
            if not m:
                raise DataError(f"{key}.json: {path} is not named CHECKPOINT_displaceLEVEL.json")
            seed = _SEED_SUFFIX.match(m.group(1))
            members = groups.setdefault((seed.group(1) if seed else m.group(1), float(row["level"])), {})
            if m.group(1) in members:
                raise DataError(f"{key}.json: checkpoint {m.group(1)} at level {row['level']:g} is counted "
                                f"in another file too ({members[m.group(1)]['path']})")
            members[m.group(1)] = {**row, "path": path}
    rows = []  # (name, level, seeds' pushed (succeed, episodes), pooled pushed, pooled others)
    for (name, level), members in groups.items():
        pushed = [(m["pushed_before_success"]["success_once"], m["pushed_before_success"]["episodes"])
                  for _, m in sorted(members.items())]
        others = [(m["not_pushed_before_success"]["success_once"], m["not_pushed_before_success"]["episodes"])
                  for m in members.values()]
        rows.append((name, level, pushed, tuple(map(sum, zip(*pushed))), tuple(map(sum, zip(*others)))))
    lines = ["| policy | displace level | seeds | pushed before the first success: succeed / episodes (per seed) | "
             "recovery rate (95 % CI, pooled) | not pushed before success: succeed / episodes |", "|---|---|---|---|---|---|"]
    for name, level, pushed, (k, n), (ko, no) in sorted(rows, key=lambda r: (-r[3][0] / max(r[3][1], 1), r[0], r[1])):
        lo, hi = wilson_interval(k, n) if n else (0.0, 0.0)
        rate = f"{k / n:.2f} ({lo:.2f}-{hi:.2f})" if n else "-"
        lines.append(f"| {name} | {level:g} | {len(pushed)} | {k} / {n} ({', '.join(f'{a}/{b}' for a, b in pushed)}) | "
                     f"{rate} | {ko} / {no} |")
    for r in d.values():
        lines += ["", f"`{r['command']}`"]
    return "\n".join(lines)


def _step_agreement(d: dict) -> str:
    """scripts/step_agreement.py results: per checkpoint and step count, how far the chunk moves from
    the first step count's chunk on the same demo windows, beside its error to the demo chunk."""
    first = d["steps"][0]
    lines = [f"| checkpoint | steps | windows | mean abs. change from {first} step{'s' if first > 1 else ''} | "
             "mean abs. error to the demo chunk |", "|---|---|---|---|---|"]
    for name, r in d["results"].items():
        for k, v in r["steps"].items():
            lines.append(f"| {name} | {k} | {r['windows']} | {v['vs_first']:.4f} | {v['error']:.4f} |")
    return "\n".join(lines)


def _demo_modes(d: dict) -> str:
    """scripts/demo_modes.py results: per demo set, the share of the chunk variance left once a
    local linear fit on the input is taken out, and the share of neighbourhoods whose chunks split
    in two (p < 0.05; about 0.05 where they form one Gaussian cloud), overall and by episode third."""
    phases = ("early", "middle", "late")
    lines = ["| demos | control | episodes (windows) | local fit rank | variance left: all / early / middle / late | "
             "split in two (p < 0.05): all (95 % CI) / early / middle / late |", "|---|---|---|---|---|---|"]
    for r in sorted(d["results"], key=lambda r: r["rank"]):  # stable: the command's order within a rank
        cells = [r["all"], *(r["by_phase"][ph] for ph in phases)]
        left = " / ".join(f"{c['residual_fraction']:.3f}" if c.get("queries") else "-" for c in cells)
        lo, hi = r["all"]["p_below_0.05_ci95"]
        split = f"{r['all']['p_below_0.05']:.2f} ({lo:.2f}-{hi:.2f}) / " + " / ".join(
            f"{c['p_below_0.05']:.2f}" if c.get("queries") else "-" for c in cells[1:])
        lines.append(f"| {r['env_id']} | {r['control_mode']} | {r['episodes']} ({r['windows']}) | {r['rank']} | {left} | "
                     f"{split} |")
    s = d["settings"]
    return "\n".join(lines + ["", f"{s['queries']} query windows per demo set, {s['k']} neighbours from other episodes, "
                              "local linear fit on that many input components, split tested in the chunks' first "
                              f"{s['dims']} principal components against {s['null_draws']} Gaussian neighbourhoods."])


def _image_probe(d: dict) -> str:
    """scripts/image_probe.py results: per encoder, the linear probe's error (cm) on the object's
    position in frames of new scenes and of the training scenes, beside the spread of the positions;
    the command under the table."""
    lines = ["| image encoder | pooling | new scenes (cm) | training scenes (cm) | spread (cm) |", "|---|---|---|---|---|"]
    for name, r in d["rows"].items():
        extra = f", {r['train_cpu_s'] / 60:.0f} CPU-min" if r.get("train_cpu_s") is not None else ""
        lines.append(f"| {name}{extra} | {r['image_pool']} | {r['test_cm']:.1f} | {r['train_cm']:.1f} | "
                     f"{r['spread_cm']:.1f} |")
    return "\n".join(lines + ["", f"First {d['frames']} frames of {d['train_frames'] // d['frames']} training and "
                               f"{d['test_frames'] // d['frames']} new episodes."])


# marker name -> (result file relative to the results root, renderer); a glob pattern gives the renderer
# {path relative to the root, without suffix: contents}
RESULT_TABLES = {
    "toy": ("toy/toy_results.json", _toy),
    "toy-bimodal": ("toy_bimodal/toy_results.json", _toy_bimodal),
    "train-cost": ("benchmark/train_cost_pushcube_1thread.json", _train_cost),
    "latency": ("benchmark/latency.json", _latency),
    "latency-sources": ("benchmark/latency_sources.json", _latency),
    "runtimes": ("benchmark/latency.json", _runtimes),
    "batch-sweep": ("benchmark/latency.json", _batch_sweep),
    # the same benchmark on a GPU (tools/benchmark.py --device cuda)
    "latency-gpu": ("benchmark/latency_h200.json", _latency),
    "runtimes-gpu": ("benchmark/latency_h200.json", _runtimes),
    "batch-sweep-gpu": ("benchmark/latency_h200.json", _batch_sweep),
    "export": ("deploy/pushcube_a2a.json", _export),
    "eval-envs": ("benchmark/eval_envs/*.json", _eval_envs),
    "video-throughput": ("benchmark/video_throughput/synthetic64.json", _video_throughput),
    "video-pipeline": ("video_pipeline/*/pipeline.json", _video_pipeline),
    "policy-curves": ("curves/policy_*.json", _curves),
    "video-bench": ("video_bench/life*.json", _video_bench),
    "video-bench-shapes": ("video_bench/shapes*.json", _video_bench),
    "video-robot": ("video_robot/*.json", _video_bench),
    "video-robot-flow": ("video_robot_flow/*.json", _video_bench),
    "video-curves": ("curves/video_*.json", _curves),
    # the same predictors on a VAE trained longer (a higher ceiling), scored on the same held-out files
    "video-robot-long": ("video_robot_long/*.json", _video_bench),
    "video-curves-long": ("curves/longvae_*.json", _curves),
    # a2a recipes on a second VAE of the long recipe: per-sample log-MSE, a higher lr, times near 0
    "video-robot-recipes": ("video_robot_recipes/*.json", _video_bench),
    "video-curves-recipes": ("curves/recipes_*.json", _curves),
    # the residual regression (a2a trained at t = 0 only) at its own learning rates and length, and
    # a2a with a share of its batch at t = 0 (objective.source_time_prob)
    "video-robot-source": ("video_robot_source/*.json", _video_bench),
    "video-curves-source": ("curves/source_*.json", _curves),
    # three training seeds of a2a with half of each batch at t = 0
    "video-robot-seeds": ("video_robot_seeds/*.json", _video_bench),
    "vae-speed": ("benchmark/vae_speed.json", _vae_speed),
    "vae-time-to-psnr": ("curves/vae_*.json", _time_to_target),
    "stackcube-placement": ("diag/stackcube_placement*.json", _placement),
    # recoveries after a push, from the per-episode files of the displace suite (scripts/displace_outcomes.py)
    "stackcube-displace-outcomes": ("diag/stackcube*displace_outcomes.json", _displace_outcomes),
    "stackcube-step-agreement": ("diag/stackcube_step_agreement.json", _step_agreement),
    "pickcube-rgb-probe": ("diag/pickcube_rgb_probe.json", _image_probe),
    # do the demos give one answer per input? (scripts/demo_modes.py)
    "demo-modes": ("diag/demo_modes.json", _demo_modes),
    **{f"robustness-{suite.replace('_', '-')}": (f"robustness/pushcube_{suite}.json", _robustness)
       for suite in ("displace", "spawn", "action_noise", "delay")},
    "robustness-recovery": ("robustness/pushcube_recovery_*.json", _robustness_files),
    "robustness-history-noise": ("robustness/pushcube_a2a_noise_action_noise.json", _robustness),
    "robustness-sources-spawn": ("robustness/pushcube_sources_spawn.json", _robustness),
    # the same checkpoints of every source under several suites (one file per suite), then ranked
    "robustness-sources-suites": ("robustness/pushcube_sources_suite_*.json", _robustness_files),
    "robustness-sources-ranking": ("robustness/pushcube_sources_suite_*.json", _robustness_ranking),
    "robustness-pickcube-sources-suites": ("robustness/pickcube_sources_suite_*.json", _robustness_files),
    "robustness-pickcube-sources-ranking": ("robustness/pickcube_sources_suite_*.json", _robustness_ranking),
    "robustness-stackcube-sources-suites": ("robustness/stackcube_sources_suite_*.json", _robustness_files),
    "robustness-stackcube-sources-ranking": ("robustness/stackcube_sources_suite_*.json", _robustness_ranking),
    "robustness-displace-demos": ("robustness/pushcube_displace_demos.json", _robustness),
    "robustness-displace-horizon": ("robustness/pushcube_displace_horizon*.json", _robustness_files),
    "robustness-pickcube-displace-demos": ("robustness/pickcube_displace_demos*.json", _robustness_files),
    # settings (re-planning interval, checkpoint) chosen on validation seeds, then 200 test episodes per level
    "robustness-displace-validation": ("robustness/val_pushcube_displace_*.json", _robustness_files),
    "robustness-displace-test200": ("robustness/pushcube_displace_test200*.json", _robustness_files),
    # rgb policies under the visual suite (lighting, table colour, camera pose, distractors)
    "robustness-pickcube-rgb-visual": ("robustness/pickcube_rgb_visual*.json", _robustness_files),
    "robustness-pushcube-rgb-visual": ("robustness/pushcube_rgb_visual*.json", _robustness_files),
}


def _replace_block(text: str, start: str, end: str, body: str, readme: Path) -> str:
    if end not in text:
        raise DataError(f"{readme}: {start} has no closing {end}")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def update_result_tables(readme: Path, root: Path) -> list[str]:
    text, done = readme.read_text(), []
    for name, (rel, render) in RESULT_TABLES.items():
        start, end = f"<!-- table:{name} -->", f"<!-- /table:{name} -->"
        if start not in text:
            continue
        if "*" in rel:  # several result files -> {file stem: contents}
            files = sorted(root.glob(rel))
            if not files:
                continue
            data = {str(f.relative_to(root).with_suffix("")): _load(f) for f in files}
        else:
            path = root / rel
            if not path.is_file():
                continue
            data = _load(path)
        body = render(data)
        if isinstance(data.get("command"), str) and name not in ("runtimes", "batch-sweep"):  # one command per result file
            body += f"\n\n`{data['command']}`"
        text = _replace_block(text, start, end, body, readme)
        done.append(name)
    tmp = readme.with_name(f".{readme.name}.tmp")
    tmp.write_text(text)
    tmp.replace(readme)
    return done


def update_readme(readme: Path, recs: list[dict], rows: list[dict]) -> list[str]:
    text = readme.read_text()
    done = []
    for name in TABLES:
        start, end = f"<!-- policy-table:{name} -->", f"<!-- /policy-table:{name} -->"
        if start not in text:
            continue
        if end not in text:
            raise DataError(f"{readme}: {start} has no closing {end}")
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = f"{head}{start}\n{render(name, recs, rows)}\n{end}{tail}"
        done.append(name)
    tmp = readme.with_name(f".{readme.name}.tmp")
    tmp.write_text(text)
    tmp.replace(readme)
    return done


@run_cli
def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", default="runs/policy")
    p.add_argument("--out", default="runs/policy_table")
    p.add_argument("--readme", default=None, help="rewrite the marked tables of this file")
    p.add_argument("--results", default="runs", help="root of the other result files (toys, benchmarks)")
    a = p.parse_args(argv)
    recs = collect(Path(a.runs))
    if not recs:
        raise DataError(f"{a.runs}: no results (expected <task>/<run>/seed<k>/run_info.json from scripts/policy_run.py)")
    rows = aggregate(recs)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out.with_suffix(".json"), {"rows": rows, "records": recs})
    md = "\n\n".join(f"### {name}\n\n{render(name, recs, rows)}" for name in TABLES)
    out.with_suffix(".md").write_text(md + "\n")
    print(md)
    if a.readme:
        done = update_readme(Path(a.readme), recs, rows)
        done += update_result_tables(Path(a.readme), Path(a.results))
        print(f"rewrote tables {done} in {a.readme}")
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.md')}")
    return rows


if __name__ == "__main__":
    main()
