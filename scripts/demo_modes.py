#!/usr/bin/env python
"""Do the demos give one answer per input, or several? Nearest-neighbour statistics of demo sets, in
the inputs a state policy sees (the last ``n_obs_steps`` states, the joint positions and previous
actions of the ``n_hist`` steps before) and the chunk of ``horizon`` actions it must return.

    .venv/bin/python scripts/demo_modes.py \
        data/StackCube-v1/state-pd_ee_delta_pos-100/motionplanning.state.pd_ee_delta_pos.physx_cpu.h5 \
        data/PegInsertionSide-v1/state-pd_joint_delta_pos-300/motionplanning.state.pd_joint_delta_pos.physx_cpu.h5 \
        --episodes 100 --rank 4 8 16 --json runs/diag/demo_modes.json [--png runs/diag/demo_modes.png]

For each query window, the ``k`` nearest windows of *other* episodes form a neighbourhood, and a
local linear fit on ``--rank`` components of their inputs is taken out of their chunks (one result
per value; too few components leave input-driven differences that read as a split). Then (see
``a2a_temporal.metrics.modes``) ``residual_fraction`` is the share of the chunks' variance that is
left (a relative floor for the error of a one-answer predictor) and ``p_below_0.05`` the share of
neighbourhoods whose chunks split into two groups better than 95 % of Gaussian clouds with the same
covariance (about 0.05 where the chunks form one cloud). Overall and by episode phase (thirds of
each episode). Windows whose chunk runs past the episode's end are left out. Inputs: each block
(states; joint positions and previous actions) standardised per dimension and weighted equally;
chunks in the policy's [-1, 1] min-max scale.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PHASES = ("early", "middle", "late")


def standardise(x: np.ndarray) -> np.ndarray:
    """Per-dimension z-score of ``(N, D)``, constant dimensions left at 0, the block scaled to unit
    mean squared norm per row so blocks of different widths weigh the same."""
    sd = x.std(0)
    z = (x - x.mean(0)) / np.where(sd > 1e-8, sd, 1.0)
    return z / np.sqrt(max(x.shape[1], 1))


def dataset_arrays(path: str, episodes: int | None, n_obs: int, n_hist: int, horizon: int) -> dict:
    """Features, flattened chunks, episode ids and phases of every window whose chunk is inside its episode."""
    import torch

    from a2a_temporal.data.maniskill import read_demos
    from a2a_temporal.data.normalize import Normalizer
    from a2a_temporal.data.windows import PolicyWindows

    meta, eps = read_demos(path, max_episodes=episodes, load_images=False)
    if len(eps) < 2:
        raise ValueError(f"{path}: {len(eps)} episode(s); the statistics compare episodes, at least 2 are needed")
    win = PolicyWindows(eps, n_obs, n_hist, horizon)
    b = win.__getitems__(np.arange(len(win)))
    keep = ~b["action_is_pad"].numpy().any(1)
    if keep.sum() == 0:
        raise ValueError(f"{path}: no episode is longer than the chunk ({horizon} actions)")
    state = b["state"].numpy()[keep].reshape(int(keep.sum()), -1)
    hist = np.concatenate([b["qpos_hist"].numpy()[keep].reshape(int(keep.sum()), -1),
                           b["prev_action"].numpy()[keep].reshape(int(keep.sum()), -1)], 1)
    feats = np.concatenate([standardise(state), standardise(hist)], 1)
    norm = Normalizer({"action": eps[0].action.shape[1]}, {"action": "minmax"})  # the policy's own scaling
    norm.fit({"action": np.concatenate([e.action for e in eps])})
    act = norm.normalize("action", b["action"][torch.from_numpy(keep)].double()).numpy()  # (N, H, A)
    groups = np.concatenate([np.full(e.length, i) for i, e in enumerate(eps)])[keep]
    phase = np.minimum((win.t / win.length * 3).astype(int), 2)[keep]
    return {"meta": meta, "features": feats.astype(np.float32), "targets": act.reshape(len(act), -1),
            "groups": groups, "phase": phase, "episodes": len(eps)}


def summarise(stats: dict, sel: np.ndarray) -> dict:
    from a2a_temporal.metrics.stats import wilson_interval

    n = int(sel.sum())
    if n == 0:
        return {"queries": 0}
    low = int((stats["p"][sel] < 0.05).sum())
    lo, hi = wilson_interval(low, n)
    return {"queries": n,
            "residual_fraction": float(stats["residual"][sel].mean() / stats["total_var"]),
            "split_fraction_median": float(np.median(stats["split"][sel])),
            "p_below_0.05": low / n, "p_below_0.05_ci95": [lo, hi]}


def plot(path: Path, results: list[dict]) -> Path:
    """One row of two bar charts per rank of the local fit: variance left, and the share that splits."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ranks = sorted({r["rank"] for r in results})
    fig, axes = plt.subplots(len(ranks), 2, figsize=(11, 3.2 * len(ranks)), squeeze=False)
    x = np.arange(len(PHASES) + 1)
    for row, rank in zip(axes, ranks):
        rs = [r for r in results if r["rank"] == rank]
        width = 0.8 / max(len(rs), 1)
        for i, r in enumerate(rs):
            cells = [r["all"], *(r["by_phase"][ph] for ph in PHASES)]
            row[0].bar(x + i * width, [c.get("residual_fraction", np.nan) for c in cells], width,
                       label=f"{r['env_id']} {r['control_mode']}")
            share = [c.get("p_below_0.05", np.nan) for c in cells]
            err = np.array([[s - c["p_below_0.05_ci95"][0], c["p_below_0.05_ci95"][1] - s] if "p_below_0.05_ci95" in c
                            else [np.nan, np.nan] for s, c in zip(share, cells)]).T
            row[1].bar(x + i * width, share, width, yerr=err, capsize=2)
        for ax, title in zip(row, ("chunk variance left by the local fit", "neighbourhoods that split in two (p < 0.05)")):
            ax.set_xticks(x + width * (len(rs) - 1) / 2, ["all", *PHASES])
            ax.set_title(f"{title}, fit rank {rank}", fontsize=9)
        row[1].axhline(0.05, color="k", lw=0.8, ls="--")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path


def main(argv=None) -> int:
    from a2a_temporal.errors import DataError
    from a2a_temporal.metrics.modes import mode_statistics
    from a2a_temporal.utils import write_json_atomic

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("datasets", nargs="+", help="ManiSkill trajectory files (.h5) with state observations")
    p.add_argument("--episodes", type=int, default=100, help="first N episodes of each file (same count for all: "
                   "denser data sets find closer neighbours)")
    p.add_argument("--queries", type=int, default=2000, help="query windows drawn per data set")
    p.add_argument("--k", type=int, default=64, help="neighbours per query")
    p.add_argument("--dims", type=int, default=3, help="principal components of the chunks the split is tested in")
    p.add_argument("--rank", type=int, nargs="+", default=[4, 8, 16],
                   help="input components of the local linear fit taken out first (one result per value)")
    p.add_argument("--null-draws", type=int, default=4000, help="Gaussian neighbourhoods simulated for p")
    p.add_argument("--n-obs-steps", type=int, default=2)
    p.add_argument("--n-hist", type=int, default=8)
    p.add_argument("--horizon", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", required=True, help="output file")
    p.add_argument("--png", help="bar chart (default: beside --json)")
    a = p.parse_args(argv)
    for name in ("episodes", "queries", "null_draws", "horizon", "n_obs_steps", "n_hist"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} {getattr(a, name)}: expected a positive number")
    for rank in a.rank:
        if a.dims < 1 or rank < 0 or a.k <= a.dims + rank + 2:
            p.error(f"--k {a.k} --dims {a.dims} --rank {rank}: expected dims >= 1, rank >= 0 and k > dims + rank + 2")
    results = []
    for path in a.datasets:
        try:
            d = dataset_arrays(path, a.episodes, a.n_obs_steps, a.n_hist, a.horizon)
        except (DataError, ValueError, OSError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        rng = np.random.default_rng(a.seed)
        n = len(d["groups"])
        q = np.sort(rng.choice(n, size=min(a.queries, n), replace=False))
        meta = d["meta"]
        for rank in a.rank:
            st = mode_statistics(d["features"], d["targets"], d["groups"], q, k=a.k, dims=a.dims, rank=rank,
                                 null_draws=a.null_draws, seed=a.seed)
            r = {"dataset": str(path), "label": f"{meta.env_id} {meta.control_mode}, rank {rank}", "env_id": meta.env_id,
                 "control_mode": meta.control_mode, "rank": rank, "episodes": d["episodes"], "windows": n,
                 "pca_share": st["pca_share"], "all": summarise(st, np.ones(len(q), bool)),
                 "by_phase": {ph: summarise(st, d["phase"][q] == i) for i, ph in enumerate(PHASES)}}
            results.append(r)
            s = r["all"]
            print(f"{r['label']:<50} {d['episodes']:>4} eps {n:>6} windows  left {s['residual_fraction']:.3f}  "
                  f"split in two {s['p_below_0.05']:.3f} [{s['p_below_0.05_ci95'][0]:.3f}-{s['p_below_0.05_ci95'][1]:.3f}]"
                  "  by phase " + " / ".join(f"{r['by_phase'][ph].get('residual_fraction', float('nan')):.3f}"
                                            f" {r['by_phase'][ph].get('p_below_0.05', float('nan')):.2f}" for ph in PHASES))
    out = {"settings": {k: getattr(a, k) for k in ("episodes", "queries", "k", "dims", "rank", "null_draws", "n_obs_steps",
                                                    "n_hist", "horizon", "seed")},
           "results": results,
           "command": " ".join(["python", "scripts/demo_modes.py"] + (argv if argv is not None else sys.argv[1:]))}
    write_json_atomic(a.json, out)
    png = plot(Path(a.png) if a.png else Path(a.json).with_suffix(".png"), results)
    print(f"wrote {a.json} and {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
