"""Robustness sweeps: success of several policies across the levels of one perturbation suite.

:func:`sweep` evaluates every policy at every level with :func:`a2a_temporal.envs.evaluate.evaluate`
on the *same* episode seeds, so the curves are paired comparisons (the same initial states and,
per :mod:`a2a_temporal.envs.perturb`, the same perturbations for every policy). :func:`plot_sweep`
draws success against level, one line per policy, with Wilson 95 % intervals as error bars.
"""
from __future__ import annotations

import math
from pathlib import Path

from ..errors import ConfigError
from ..metrics.stats import wilson_interval
from ..utils import write_json_atomic
from .perturb import NOMINAL, SUITES, UNITS, check_suite, describe
from .seeds import TEST_SEED_START

KEPT = ("success_once", "success_once_ci95", "success_at_end", "success_at_end_ci95", "mean_episode_length",
        "episodes", "num_inference_steps", "n_action_steps", "wall_time_s", "by_direction", "push_outcomes")


def sweep(policies: dict, suite: str, levels=None, episodes: int = 20, seed: int = TEST_SEED_START,
          out_dir: str | Path | None = None, progress: bool = False, **evaluate_kwargs) -> dict:
    """Evaluate each ``policies[name]`` at each level of ``suite`` (default: all its levels).

    Every (policy, level) runs ``episodes`` episodes on seeds ``seed .. seed+episodes-1``.
    ``evaluate_kwargs`` go to :func:`evaluate` (``num_envs``, ``max_episode_steps``,
    ``num_inference_steps``, ``method``, ``threads``, ...). With ``out_dir`` each evaluation is
    written to ``<out_dir>/<name>_<suite><level>.json`` (+ ``.episodes.jsonl``) and the sweep to
    ``<out_dir>/sweep_<suite>.json``. All levels and all policies' tasks / observation modes are
    checked before anything runs. Returns::

        {"suite", "levels", "unit", "nominal_level", "episodes", "seed", "level_spec": {level: text},
         "results": {name: [{"level", "success_once", "success_once_ci95", "success_at_end", ...}]}}
    """
    from .evaluate import evaluate

    if not policies:
        raise ConfigError("sweep needs at least one policy")
    if suite not in SUITES:
        check_suite(suite, None)  # raises the one-line unknown-suite error
    levels = list(SUITES[suite]) if levels is None else list(levels)
    if not levels:
        raise ConfigError(f"sweep of suite {suite!r} needs at least one level; valid levels: "
                          + ", ".join(f"{v:g}" for v in SUITES[suite]))
    levels = [check_suite(suite, lv)[1] for lv in levels]
    for name, policy in policies.items():
        for lv in levels:
            check_suite(suite, lv, policy.config.env_id, policy.config.obs_mode)
    out = Path(out_dir) if out_dir is not None else None
    env_ids = {p.config.env_id for p in policies.values()}
    env_id = env_ids.pop() if len(env_ids) == 1 else None
    result = {"suite": suite, "levels": levels, "unit": UNITS[suite], "nominal_level": NOMINAL[suite],
              "episodes": episodes, "seed": seed,
              "level_spec": {f"{lv:g}": describe(suite, lv, env_id) for lv in levels}, "results": {}}
    for name, policy in policies.items():
        rows = []
        for lv in levels:
            json_path = out / f"{name}_{suite}{lv:g}.json" if out is not None else None
            res = evaluate(policy, episodes=episodes, seed=seed, suite=suite, level=lv, out_json=json_path,
                           progress=progress, extra_info={"sweep_policy": name}, **evaluate_kwargs)
            row = {"level": lv, **{k: res[k] for k in KEPT if k in res}, "env_id": res["env_id"]}
            if json_path is not None:
                row["json"] = str(json_path)
            rows.append(row)
        result["results"][name] = rows
        if out is not None:  # keep what is done if a later policy fails
            write_json_atomic(out / f"sweep_{suite}.json", result)
    return result


def plot_sweep(result: dict, png_path: str | Path, metric: str = "success_once") -> Path:
    """Success (``metric``: success_once or success_at_end) against level, one line per policy,
    Wilson 95 % intervals (recomputed from the rate and episode count) as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if metric not in ("success_once", "success_at_end"):
        raise ConfigError(f"plot_sweep metric must be success_once or success_at_end, got {metric!r}")
    levels = [float(v) for v in result["levels"]]
    span = (max(levels) - min(levels)) or 1.0
    names = list(result["results"])
    fig, ax = plt.subplots(figsize=(6.0, 4.0), dpi=120)
    for j, name in enumerate(names):
        rows = result["results"][name]
        xs, ys, lo, hi = [], [], [], []
        for r in rows:
            n = int(r["episodes"])
            k = int(round(r[metric] * n)) if n and not math.isnan(r[metric]) else 0
            a, b = wilson_interval(k, n)
            y = r[metric]
            # a small horizontal offset keeps overlapping error bars apart
            xs.append(float(r["level"]) + (j - (len(names) - 1) / 2) * 0.012 * span)
            ys.append(y)
            lo.append(max(0.0, y - a))
            hi.append(max(0.0, b - y))
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=name)
    ax.set_xticks(levels)
    ax.set_xticklabels([f"{v:g}" for v in levels])
    ax.set_xlabel(result.get("unit", result["suite"]))
    ax.set_ylabel(f"{metric.replace('_', ' ')} (Wilson 95 %)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"robustness: {result['suite']} ({result['episodes']} episodes per point)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    png = Path(png_path)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    return png
