#!/usr/bin/env python
"""Choose a run's ``best`` checkpoint on validation seeds after training (for runs trained
without in-training evaluation, e.g. on a machine without the simulator: scripts/parallel_train.py).

    python scripts/select_best.py RUN_DIR [--episodes 50] [--seed 500000]

Evaluates every step checkpoint under RUN_DIR/checkpoints/ with tools/eval_policy.py on the
validation seeds (the run's own in-training evaluation settings: sampler steps and method from
run_config.json), writes RUN_DIR/eval/select_<step>.json (a complete one is reused), points
RUN_DIR/checkpoints/best at the highest success_once (ties go to the later checkpoint, as in
training) and records the choice in RUN_DIR/eval/selection.json.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from a2a_temporal.envs.seeds import TEST_SEED_START, VALIDATION_SEED_START  # noqa: E402
from a2a_temporal.training.checkpoint import point_link  # noqa: E402
from a2a_temporal.utils import write_json_atomic  # noqa: E402


def choose(results: dict[str, float]) -> str:
    """Step folder with the highest rate; ties go to the later step."""
    return max(sorted(results), key=lambda step: (results[step], int(step)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run_dir")
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=VALIDATION_SEED_START)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    run = Path(a.run_dir)
    if not (VALIDATION_SEED_START <= a.seed and a.seed + a.episodes <= TEST_SEED_START):
        p.error(f"--seed {a.seed}: validation seeds lie in [{VALIDATION_SEED_START}, {TEST_SEED_START})")
    steps = sorted(d.name for d in (run / "checkpoints").glob("[0-9]*") if (d / "pretrained_model").is_dir())
    if not steps:
        p.error(f"{run / 'checkpoints'}: no step checkpoint with a pretrained_model/ folder")
    cfg_path = run / "run_config.json"
    ev = json.loads(cfg_path.read_text()).get("eval", {}) if cfg_path.is_file() else {}
    results = {}
    for step in steps:
        js = run / "eval" / f"select_{step}.json"
        done = json.loads(js.read_text()) if js.is_file() else {}
        if not (done.get("complete") and done.get("episodes") == a.episodes and (done.get("seeds") or [None])[0] == a.seed):
            cmd = [sys.executable, "tools/eval_policy.py", "--checkpoint", str(run / "checkpoints" / step),
                   "--episodes", str(a.episodes), "--seed", str(a.seed), "--json", str(js)]
            cmd += ["--num-inference-steps", str(ev["num_inference_steps"])] if ev.get("num_inference_steps") else []
            cmd += ["--method", ev["method"]] if ev.get("method") else []
            cmd += ["--quiet"] if a.quiet else []
            print("+", " ".join(cmd), flush=True)
            subprocess.run(cmd, check=True, cwd=ROOT)
            done = json.loads(js.read_text())
        results[step] = float(done["success_once"])
        print(f"{run}: step {int(step)}: validation success_once {results[step]:.2f}", flush=True)
    best = choose(results)
    point_link(run / "checkpoints" / "best", best)
    record = {"best": best, "validation_success_once": results, "episodes": a.episodes, "seed": a.seed,
              "command": " ".join(["scripts/select_best.py", str(run)] + ([f"--episodes {a.episodes}"] if a.episodes != 50 else []))}
    write_json_atomic(run / "eval" / "selection.json", record)
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
