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
from a2a_temporal.toy import ToyDataset, ToyFlowModel, ToyModelConfig, ToySystem  # noqa: E402
from a2a_temporal.pretrained import load_pretrained  # noqa: E402
from a2a_temporal.training import Trainer, TrainConfig  # noqa: E402
from a2a_temporal.training.trainer import config_changes  # noqa: E402


@dataclass
class ToyDemoConfig:
    out: str = "runs/toy"
    system: ToySystem = field(default_factory=ToySystem)
    backbone: TransformerConfig = field(default_factory=lambda: TransformerConfig(in_dim=2, preset="tiny"))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        iterations=1200, batch_size=256, lr=1e-3, warmup_iterations=100, ema_decay=0.995, log_every=100, threads=2))
    objectives: list[str] = field(default_factory=lambda: ["a2a", "flow"])
    num_inference_steps: list[int] = field(default_factory=lambda: [1, 2, 4, 10])
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
    results, preds, timings = {}, {}, {}
    for name in cfg.objectives:
        torch.manual_seed(cfg.train.seed)
        model = ToyFlowModel(ToyModelConfig(objective=ObjectiveConfig(name=name), backbone=cfg.backbone))
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
            torch.manual_seed(1234)
            pred = ema.predict(test.prev, steps=k)
            results[name][str(k)] = float((pred - test.next).norm(dim=-1).mean())
            preds[(name, k)] = pred
    print("\nmean Euclidean error to the true next state (test set, %d points)" % cfg.test_samples)
    header = "steps  " + "  ".join(f"{n:>10}" for n in cfg.objectives)
    print(header)
    for k in cfg.num_inference_steps:
        print(f"{k:>5}  " + "  ".join(f"{results[n][str(k)]:>10.4f}" for n in cfg.objectives))
    summary = {"error_to_true_next": results, "train_wall_s": timings, "config": to_dict(cfg)}
    (out / "toy_results.json").write_text(json.dumps(summary, indent=2))
    plot(out / "toy_results.png", results, test.prev, test.next, preds)
    print(f"\nwrote {out / 'toy_results.json'} and {out / 'toy_results.png'}")
    return summary


if __name__ == "__main__":
    main()
