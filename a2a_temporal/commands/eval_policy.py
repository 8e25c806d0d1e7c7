"""Evaluate a trained policy in the ManiSkill simulator, on held-out (test) seeds.

    python tools/eval_policy.py --checkpoint runs/push/checkpoints/best --episodes 100 \
        --num-inference-steps 1 [--seed 1000000] [--num-envs 2] [--json runs/push/eval/test_1step.json] \
        [--video-dir runs/push/videos] [--suite displace --level 4]

Seeds ``seed, seed+1, ...`` (default from 1,000,000, the test range); a seed that the policy's
training demos were planned from is refused unless ``--allow-demo-seeds`` (a deliberate replay
check). Reports success_once and success_at_end with Wilson 95 % intervals, mean episode
length and the per-inference-call latency (p50/p95, batch 1, timed around the model call only).
Finished episodes are appended to ``<json stem>.episodes.jsonl`` as they finish; the JSON file
holds config, seeds, horizon and versions. Without ``--json`` the results go to
``<run dir>/eval/`` beside the checkpoints, never inside a checkpoint directory.

``--suite NAME --level L`` applies a fixed, seeded robustness perturbation (spawn, size, displace,
action_noise, obs_noise, delay, visual; see ``a2a_temporal/envs/perturb.py`` for what each level
does per task); the JSON records the suite, the level and each episode's perturbation.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from a2a_temporal.cli import run_cli
from a2a_temporal.envs.evaluate import evaluate
from a2a_temporal.envs.perturb import SUITES, check_suite
from a2a_temporal.envs.seeds import TEST_SEED_START
from a2a_temporal.errors import ConfigError
from a2a_temporal.heads.action import ActionFlowPolicy
from a2a_temporal.training.checkpoint import resolve_pretrained

METHODS = ["euler", "midpoint", "heun", "ddpm", "ddim"]


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {v} (omit the flag for the default)")
    return v


def finite_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="pretrained_model dir, a checkpoint step dir or a run dir")
    p.add_argument("--episodes", type=positive_int, default=100)
    p.add_argument("--num-inference-steps", "--steps", dest="num_inference_steps", type=positive_int, default=None,
                   help="sampler steps (default: the objective's: 1 a2a, 10 flow, 100 ddpm, ...)")
    p.add_argument("--method", default=None, choices=METHODS,
                   help="solver (euler/midpoint/heun) for flows, sampler (ddpm/ddim) for diffusion")
    p.add_argument("--json", default=None, help="where to write the results (default <run dir>/eval/...)")
    p.add_argument("--seed", type=int, default=TEST_SEED_START, help="first episode seed (test range: 1000000+)")
    p.add_argument("--allow-demo-seeds", action="store_true",
                   help="allow seeds the policy's training demos used (a deliberate replay check)")
    p.add_argument("--num-envs", type=positive_int, default=2)
    p.add_argument("--sim-backend", default="cpu", choices=["cpu", "gpu"],
                   help="cpu: one CPU-simulated env per process; gpu: ManiSkill's batched physx_cuda simulation")
    p.add_argument("--max-episode-steps", type=positive_int, default=None,
                   help="evaluation horizon (default: ManiSkill's Diffusion Policy settings per task)")
    p.add_argument("--video-dir", default=None)
    p.add_argument("--video-episodes", type=int, default=2)
    p.add_argument("--n-action-steps", type=positive_int, default=None,
                   help="actions of each chunk executed before the next policy call (default: the training "
                        "setting; 1 re-plans at every control step)")
    p.add_argument("--temporal-ensemble", type=finite_float, default=None, metavar="M",
                   help="ACT's temporal ensembling: every chunk stays live over its horizon and the executed "
                        "action is the exp(-M*i)-weighted mean of the live chunks (i = 0 the oldest; ACT: M = 0.01 "
                        "with --n-action-steps 1). Default: the policy's own setting (off)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads for the policy (latency: 1)")
    p.add_argument("--suite", default=None,
                   help="robustness suite: spawn, size, displace, action_noise, obs_noise, delay, visual")
    p.add_argument("--level", type=float, default=None, help="the suite's level (e.g. displace: 0, 2, 4, 6 cm)")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def default_json(checkpoint: str, steps: int | None, seed: int, suite: str | None = None, level=None,
                 n_action_steps: int | None = None, temporal_ensemble: float | None = None) -> Path:
    """``<run dir>/eval/<checkpoint name>_<k>step[_exec<n>][_ens<m>][_<suite><level>]_seed<seed>.json``:
    beside the checkpoints."""
    given = Path(checkpoint)
    parts = given.parts
    if "checkpoints" in parts:
        i = len(parts) - 1 - parts[::-1].index("checkpoints")
        run_dir, name = Path(*parts[:i]) if i else Path("."), "_".join(parts[i + 1:i + 2]) or "last"
    elif (given / "checkpoints").is_dir():
        run_dir, name = given, "last"
    else:
        run_dir, name = given.parent, given.name
    tag = f"{steps}step" if steps else "default"
    if n_action_steps is not None:
        tag += f"_exec{n_action_steps}"
    if temporal_ensemble is not None:
        tag += f"_ens{temporal_ensemble:g}"
    if suite is not None:
        tag += f"_{suite}{level:g}"
    return run_dir / "eval" / f"{name}_{tag}_seed{seed}.json"


@run_cli
def main(argv=None) -> dict:
    a = parse(argv)
    if a.level is not None and a.suite is None:
        raise ConfigError(f"--level {a.level:g} needs --suite (one of: {', '.join(SUITES)})")
    if a.suite is not None:
        check_suite(a.suite, a.level)  # unknown suite or level: one line, before loading anything
    ckpt = resolve_pretrained(a.checkpoint)
    policy = ActionFlowPolicy.from_pretrained(ckpt)
    json_path = Path(a.json) if a.json else default_json(a.checkpoint, a.num_inference_steps, a.seed, a.suite,
                                                         a.level, a.n_action_steps, a.temporal_ensemble)
    if json_path.resolve().is_relative_to(ckpt.parent.resolve()):
        raise ConfigError(f"--json {json_path} lies inside the checkpoint directory {ckpt.parent}; "
                          "write evaluations beside it instead")
    res = evaluate(policy, episodes=a.episodes, num_inference_steps=a.num_inference_steps, method=a.method,
                   seed=a.seed, num_envs=a.num_envs, max_episode_steps=a.max_episode_steps, video_dir=a.video_dir,
                   video_episodes=a.video_episodes, out_json=json_path, threads=a.threads, progress=not a.quiet,
                   extra_info={"checkpoint": str(ckpt), "checkpoint_arg": a.checkpoint},
                   allow_demo_seeds=a.allow_demo_seeds, sim_backend=a.sim_backend, suite=a.suite, level=a.level,
                   n_action_steps=a.n_action_steps,
                   temporal_ensemble="config" if a.temporal_ensemble is None else a.temporal_ensemble)
    lat = res["latency"]
    lo, hi = res["success_once_ci95"]
    print(json.dumps({"env_id": res["env_id"], "objective": res["objective"],
                      "num_inference_steps": res["num_inference_steps"], "n_action_steps": res["n_action_steps"],
                      "temporal_ensemble": res["temporal_ensemble"], "episodes": res["episodes"],
                      "seeds": f"{res['seeds'][0]}..{res['seeds'][-1]} ({res['seed_split']})",
                      "success_once": res["success_once"], "success_once_ci95": [round(lo, 3), round(hi, 3)],
                      "success_at_end": res["success_at_end"], "mean_episode_length": res["mean_episode_length"],
                      "horizon": res["horizon"], "suite": res["suite"], "level": res["level"],
                      "stages_reached": res["stages_reached"], "stages_at_end": res["stages_at_end"],
                      "latency_p50_ms": round(lat.get("p50_ms", float("nan")), 3),
                      "latency_p95_ms": round(lat.get("p95_ms", float("nan")), 3)}))
    print(f"wrote {json_path}")
    return res


if __name__ == "__main__":
    main()
