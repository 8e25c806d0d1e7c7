#!/usr/bin/env python
"""Single-step generation on a 2-D dynamical system: flow from the previous state vs from noise.

Trains two models on the same FlowTransformer and data, one flowing from the previous state
(a2a) and one from Gaussian noise (flow), then reports the error to the true next state for
1, 2, 4 and 10 Euler steps. Writes ``toy_results.json`` and ``toy_results.png``.

    python demos/toy_single_step.py [--config configs/toy/default.yaml] [--out runs/toy] [--train.iterations=...]
"""
from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from a2a_temporal.backbone import TransformerConfig  # noqa: E402
from a2a_temporal.cli import run_cli  # noqa: E402
from a2a_temporal.config import parse_cli, to_dict  # noqa: E402
from a2a_temporal.flow import ObjectiveConfig  # noqa: E402
from a2a_temporal.toy import ToyDataset, ToyFlowModel, ToyModelConfig, ToySystem, mode_fractions  # noqa: E402
from a2a_temporal.pretrained import load_pretrained  # noqa: E402
from a2a_temporal.training import Trainer, TrainConfig  # noqa: E402
from a2a_temporal.training.trainer import config_changes  # noqa: E402


@dataclass
class ToyDemoConfig:
    out: str = "runs/toy"
    system: ToySystem = field(default_factory=ToySystem)
    backbone: TransformerConfig = field(default_factory=lambda: TransformerConfig(in_dim=2, preset="tiny"))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        iterations=1200, batch_size=256, lr=1e-3, warmup_iterations=100, ema_decay=0.995, log_every=100, threads=1))
    # a2a | a2a_noise (a2a with N(0, a2a_noise^2) on its start point) | flow | ddim | regression | mip
    objectives: list[str] = field(default_factory=lambda: ["a2a", "flow"])
    a2a_noise: float = 0.5
    num_inference_steps: list[int] = field(default_factory=lambda: [1, 2, 4, 10])
    mode_radius: float = 0.15  # bimodal systems: a prediction within this distance counts as a mode
    train_samples: int = 20000
    test_samples: int = 4000


def plot(path: Path, results: dict, prev, truth, preds) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(19, 4.6))
    n = 1500
    axes[0].scatter(*prev[:n].T, s=2, c="tab:gray", label="previous state (source)")
    axes[0].scatter(*truth[:n].T, s=2, c="tab:green", label="true next state")
    axes[0].set_title("data: previous -> next")
    for ax, key, title in ((axes[1], ("a2a", 1), "a2a, 1 step"), (axes[2], ("flow", 1), "Gaussian flow, 1 step"),
                           (axes[3], None, "")):
        if key is None:
            break
        ax.scatter(*truth[:n].T, s=2, c="tab:green", label="true next")
        ax.scatter(*preds[key][:n].T, s=2, c="tab:red", label="prediction")
        ax.set_title(f"{title}: mean error {results[key[0]][str(key[1])]:.4f}")
    for name, errs in results.items():
        ks = sorted(int(k) for k in errs)
        axes[3].plot(ks, [errs[str(k)] for k in ks], marker="o", label=name)
    axes[3].set_xscale("log"); axes[3].set_yscale("log")
    axes[3].set_xlabel("Euler steps"); axes[3].set_ylabel("mean |x_hat - x_next|")
    axes[3].set_title("error to the true next state")
    for ax in axes[:3]:
        ax.legend(loc="best", fontsize=7, markerscale=4)
    axes[3].legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


@run_cli
def main(argv=None) -> dict:
    cfg = parse_cli(ToyDemoConfig, argv)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    train = ToyDataset(cfg.system, cfg.train_samples, seed=cfg.train.seed)
    test = ToyDataset(cfg.system, cfg.test_samples, seed=cfg.train.seed + 10_000)
    results, preds, timings, fractions = {}, {}, {}, {}
    bimodal = cfg.system.branch_offset > 0
    modes = cfg.system.modes_of(test.prev)  # (N, 2, 2)
    for name in cfg.objectives:
        torch.manual_seed(cfg.train.seed)
        objective = (ObjectiveConfig(name="a2a", start_point_noise=cfg.a2a_noise) if name == "a2a_noise"
                     else ObjectiveConfig(name=name))
        model = ToyFlowModel(ToyModelConfig(objective=objective, backbone=cfg.backbone))
        run = out / name
        done = run / "train_summary.json"
        if done.is_file() and json.loads(done.read_text()).get("iterations") == cfg.train.iterations and \
                (run / "run_config.json").is_file() and not config_changes(
                    json.loads((run / "run_config.json").read_text()), to_dict(cfg)):
            # A second run with the same settings reuses the trained model.
            print(f"{name}: already trained in {run}, reusing it")
            ema = load_pretrained(run / "checkpoints" / "last" / "pretrained_model")
            timings[name] = json.loads(done.read_text()).get("train_time_s")
        else:
            if (run / "checkpoints").exists():  # other settings: start this model afresh
                shutil.rmtree(run)
            t0 = time.perf_counter()
            trainer = Trainer(model, train, cfg.train, run, run_config=to_dict(cfg), progress=True)
            trainer.fit()
            timings[name] = round(time.perf_counter() - t0, 1)
            ema = trainer.eval_model()
        results[name] = {}
        for k in cfg.num_inference_steps:
            if name in ("regression", "mip") and k > 1:
                continue  # fixed samplers: one entry
            torch.manual_seed(1234)
            pred = ema.predict(test.prev, steps=None if name in ("regression", "mip") else k)
            if bimodal:  # the drawn branch is random: measure against the nearest valid mode
                err = (pred[:, None] - modes).norm(dim=-1).min(dim=1).values
                fractions[f"{name}@{k}"] = mode_fractions(pred, modes, cfg.mode_radius)
            else:
                err = (pred - test.next).norm(dim=-1)
            results[name][str(k)] = float(err.mean())
            preds[(name, k)] = pred
    what = "the nearest valid next state" if bimodal else "the true next state"
    print(f"\nmean Euclidean error to {what} (test set, {cfg.test_samples} points)")
    header = "steps  " + "  ".join(f"{n:>10}" for n in cfg.objectives)
    print(header)
    for k in cfg.num_inference_steps:
        print(f"{k:>5}  " + "  ".join(f"{results[n].get(str(k), float('nan')):>10.4f}" for n in cfg.objectives))
    summary = {("error_to_nearest_mode" if bimodal else "error_to_true_next"): results, "train_wall_s": timings,
               "config": to_dict(cfg)}
    if bimodal:
        summary["mode_fractions"] = fractions
        print(f"\nwhere samples land (radius {cfg.mode_radius}): mode A / mode B / between the modes / elsewhere")
        for key, f in fractions.items():
            print(f"  {key:<16} {f['mode_a']:.2f} / {f['mode_b']:.2f} / {f['between']:.2f} / {f['other']:.2f}")
    (out / "toy_results.json").write_text(json.dumps(summary, indent=2))
    plot(out / "toy_results.png", results, test.prev, test.next, preds)
    print(f"\nwrote {out / 'toy_results.json'} and {out / 'toy_results.png'}")
    return summary


if __name__ == "__main__":
    main()
