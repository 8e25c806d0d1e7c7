#!/usr/bin/env python
"""The main job on its defaults: ManiSkill demos -> one-step A2A policy -> evaluation.

    python demos/pushcube_a2a.py [--out runs/demo] [--episodes 100] [--force]

1. generates 100 PushCube-v1 demos with ManiSkill's motion planner (state, pd_ee_delta_pos);
2. trains an A2A state policy (configs/policy/pushcube_state.yaml, about 10 minutes on 2 cores);
3. evaluates it at 1 Euler step over 100 episodes, prints success and per-call latency, and
   writes a rollout video.

Stages whose results already exist are skipped (``--force`` redoes them); every stage writes
atomically, so an interrupted run resumes cleanly. Summary: ``<out>/demo_summary.json``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from a2a_temporal.cli import run_cli, run_tool
from a2a_temporal.utils import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]


@run_cli
def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--config", default=str(ROOT / "configs/policy/pushcube_state.yaml"))
    p.add_argument("--num-demos", type=int, default=100)
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--train-iterations", type=int, default=None, help="default: the config's")
    p.add_argument("--force", action="store_true", help="redo every stage")
    a = p.parse_args(argv)
    out = Path(a.out)
    t0 = time.perf_counter()
    data_dir = ROOT / "data" / "PushCube-v1" / f"state-pd_ee_delta_pos-{a.num_demos}"
    h5 = data_dir / "motionplanning.state.pd_ee_delta_pos.physx_cpu.h5"

    print(f"== 1/3 demos: {h5}", flush=True)
    if a.force or not (data_dir / "dataset.json").is_file():
        run_tool("generate_demos.py", ["--env-id", "PushCube-v1", "--num-demos", str(a.num_demos), "--obs-mode", "state",
                             "--control-mode", "pd_ee_delta_pos", "--out", str(data_dir)])
    else:
        print("   already there, skipped")
    t_demos = time.perf_counter() - t0

    run = out / "policy"
    print(f"== 2/3 training an A2A policy: {run}", flush=True)
    summary_file = run / "train_summary.json"
    if a.force or not summary_file.is_file():
        args = ["--config", a.config, "--output-dir", str(run), f"--dataset.path={h5}", "--eval.episodes=0"]
        if (run / "checkpoints" / "last").exists() and not a.force:
            args.append("--train.resume=true")  # an interrupted earlier run: continue it
        elif a.force:
            shutil.rmtree(run, ignore_errors=True)
        if a.train_iterations:
            args.append(f"--train.iterations={a.train_iterations}")
        run_tool("train_policy.py", args)
    else:
        print("   already trained, skipped")
    train = json.loads(summary_file.read_text())

    print(f"== 3/3 evaluating at 1 step over {a.episodes} episodes", flush=True)
    eval_json = out / "eval_1step.json"
    fresh = eval_json.is_file() and eval_json.stat().st_mtime > summary_file.stat().st_mtime and not a.force
    done = json.loads(eval_json.read_text()) if fresh else None
    if done is not None and done.get("complete") and done.get("episodes") == a.episodes:
        print("   already evaluated, skipped")
        res = done
    else:
        run_tool("eval_policy.py", ["--checkpoint", str(run / "checkpoints" / "last"), "--episodes", str(a.episodes),
                                "--num-inference-steps", "1", "--json", str(eval_json), "--video-dir", str(out / "videos"),
                                "--video-episodes", "2", "--num-envs", "2"])
        res = json.loads(eval_json.read_text())
    lat = res["latency"]
    summary = {"env_id": "PushCube-v1", "demos": a.num_demos, "dataset": str(h5), "checkpoint": str(run),
               "train_iterations": train["iterations"], "train_time_s": train["train_time_s"],
               "success_once": res["success_once"], "success_once_ci95": res["success_once_ci95"],
               "success_at_end": res["success_at_end"], "seeds": [res["seeds"][0], res["seeds"][-1]],
               "episodes": res["episodes"], "latency_p50_ms": lat["p50_ms"], "latency_p95_ms": lat["p95_ms"],
               "inference_calls": lat["calls"], "batch_size_max": lat.get("batch_size_max"), "videos": sorted(str(p) for p in (out / "videos").glob("*.mp4")),
               "demo_generation_s": round(t_demos, 1), "total_s": round(time.perf_counter() - t0, 1)}
    write_json_atomic(out / "demo_summary.json", summary)
    print("\n== PushCube-v1, A2A state policy, 1 Euler step")
    lo, hi = summary["success_once_ci95"]
    print(f"   success_once {summary['success_once']:.2f} (95% CI {lo:.2f}-{hi:.2f})   success_at_end "
          f"{summary['success_at_end']:.2f}   ({summary['episodes']} held-out test episodes, seeds "
          f"{summary['seeds'][0]}-{summary['seeds'][1]}, never seen in the demos)")
    print(f"   per-call latency p50 {summary['latency_p50_ms']:.2f} ms, p95 {summary['latency_p95_ms']:.2f} ms "
          f"(one call serves both environments, 1 CPU thread; tools/benchmark.py times batch 1 alone)")
    print(f"   trained {summary['train_iterations']} iterations in {summary['train_time_s'] / 60:.1f} min")
    print(f"   rollout videos: {', '.join(summary['videos'])}")
    print(f"   summary: {out / 'demo_summary.json'}")
    return summary


if __name__ == "__main__":
    main()
