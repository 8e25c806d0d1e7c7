"""Per-call inference latency of a policy, measured in one run.

    python tools/benchmark.py --config configs/policy/pushcube_state.yaml \
        --variants a2a:1 flow:10 ddpm:100 ddim:10 mip:2 regression:1 --json runs/bench/latency.json
    python tools/benchmark.py --variants a2a:1 --runtimes eager ort compile --json runs/benchmark/deploy_latency.json

What is timed (``--threads`` CPU threads, 1 by default), every item round by round and interleaved
with all the others, so machine noise hits them alike and every ratio comes from one run:

* variants: the same ActionFlowPolicy (same backbone and encoders) with a different objective and
  number of steps (for a2a also another flow start: ``a2a+legendre:1``), batch 1, timed around
  ``predict_action_chunk``; ratios against the first
  variant (the reference). ddpm / ddim variants get ``decoded_rollout_weight=0`` and
  ``objective.rollout_weight=0`` (training-only settings they refuse). Trained checkpoints can
  be given with ``--checkpoint objective=DIR`` (latency does not depend on the weights, so fresh
  weights are used otherwise).
* the floor: one bare backbone (FlowTransformer) forward at the reference's batch, tokens and
  threads; ``floor_ratio`` = reference p50 / floor p50, per runtime and in the same runtime:
  ``eager`` (always), ``compile`` (torch.compile of the policy call and of the backbone; a failure
  is reported in the JSON) and ``ort`` (ONNX Runtime: the exported policy graph against the
  backbone exported alone; deterministic samplers only).
* a breakdown of the reference call: normalisation, observation encoder, history token + source
  encoder, flow step (backbone), chunk decoder + unnormalisation, each timed in isolation on
  precomputed inputs, for the folded inference path and for the unfolded reference path;
  ``overhead`` = total - stages (Python and framework dispatch).
* a batch sweep (``--batch-sizes``, default 1, 2, 4, ..., 256): chunks/s of the reference call
  per batch size and runtime, the ratio to batch 1, and the compute ceiling (the FLOPs of a call
  against a plain matmul's FLOP rate measured in the same run).

Process CPU time is reported beside wall time for the whole run. Writes JSON and a PNG.

``--device cuda`` runs the same on a GPU: every timed call ends with ``torch.cuda.synchronize()``
(a call is timed to its result), runtimes eager and compile (ONNX Runtime is refused), no stage
breakdown and no compute ceiling (both are CPU measurements here).

Training cost (a sub-command): seconds and process CPU seconds per training iteration of each
recipe on one task, interleaved in one run, and the projection to the task's iteration budget::

    python tools/benchmark.py train --config configs/policy/pushcube_state.yaml \
        --recipes a2a flow flow_latent ddpm regression mip --iterations 40 --threads 1

Robustness sweep (a sub-command): success of several checkpoints across the levels of one
perturbation suite (:mod:`a2a_temporal.envs.perturb`), on the same test seeds, one plot::

    python tools/benchmark.py robustness --checkpoint a2a=runs/.../a2a/seed0/checkpoints/best:1 \
        --checkpoint flow=runs/.../flow/seed0/checkpoints/best:10 --suite displace --episodes 100 \
        --json runs/robustness/pushcube_displace.json
"""
from __future__ import annotations

import argparse
import math
import os
import shlex
import time
from pathlib import Path

import numpy as np
import torch

from a2a_temporal.cli import run_cli
from a2a_temporal.config import load_config
from a2a_temporal.errors import ConfigError
from a2a_temporal.flow.objective import OBJECTIVES
from a2a_temporal.heads.action import ActionFlowPolicy
from a2a_temporal.training.checkpoint import resolve_pretrained
from a2a_temporal.training.trainer import move_to
from a2a_temporal.utils import versions, write_json_atomic

RUNTIMES = ("eager", "compile", "ort")
NO_DIFFERENTIABLE_SAMPLER = ("ddpm", "ddim")
DEFAULT_SIZES = "1,2,4,8,16,32,64,128,256"


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/policy/pushcube_state.yaml")
    p.add_argument("--variants", nargs="+",
                   default=["a2a:1", "flow:10", "ddpm:100", "ddim:10", "mip:2", "regression:1"],
                   help="objective:steps pairs; the first is the reference for ratios, the floor and the breakdown")
    p.add_argument("--checkpoint", action="append", default=[], help="objective=DIR: use trained weights")
    p.add_argument("--calls", type=int, default=200, help="timed calls per item (variants, floor, stages)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (calls are split across them)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runtimes", nargs="+", default=["eager"], help=f"any of {list(RUNTIMES)} (eager always runs)")
    p.add_argument("--batch-sizes", default=DEFAULT_SIZES,
                   help="batch sweep sizes, comma separated ('' or 'none': off)")
    p.add_argument("--sweep-seconds", type=float, default=0.3, help="time budget per batch size and runtime")
    p.add_argument("--onnx-exporter", default="auto", choices=["auto", "dynamo", "torchscript"])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="where the policies run (cuda: every timed call ends with a synchronize; eager and "
                        "compile only, no stage breakdown)")
    p.add_argument("--json", default="runs/benchmark/latency.json")
    p.add_argument("overrides", nargs="*", help="dotted config overrides, e.g. --policy.backbone.preset=small")
    a, rest = p.parse_known_args(argv)
    a.overrides = a.overrides + rest
    return a


# ---------------------------------------------------------------------------- arguments
METHODS = ("euler", "midpoint", "heun", "ddpm", "ddim")


def parse_variants(specs: list[str]) -> list[tuple[str, str, int]]:
    """``["a2a:1", "a2a+legendre:1", "ddpm/ddim:10", ...]`` -> ``[(spec, key, steps), ...]``
    (OBJECTIVE[+SOURCE][/METHOD]:STEPS: the trained objective, for a2a optionally another flow start
    ``policy.source``, optionally another sampler of it; ``key`` is OBJECTIVE[+SOURCE]); malformed ->
    ConfigError."""
    from a2a_temporal.heads.action.sources import SOURCES

    out, seen = [], set()
    for spec in specs:
        head, sep, steps = spec.partition(":")
        key, _, method = head.partition("/")
        name, plus, source = key.partition("+")
        if not sep or name not in OBJECTIVES or not steps.isdigit() or int(steps) < 1 or \
                (method and method not in METHODS) or (plus and (name != "a2a" or source not in SOURCES)):
            raise ConfigError(f"--variants {spec!r}: expected OBJECTIVE[+SOURCE][/METHOD]:STEPS with OBJECTIVE one of "
                              f"{list(OBJECTIVES)}, SOURCE (a2a only) one of {list(SOURCES)}, METHOD one of "
                              f"{list(METHODS)} and STEPS a positive integer (e.g. a2a:1 a2a+legendre:1 flow:10 "
                              "ddpm/ddim:10)")
        if spec in seen:
            raise ConfigError(f"--variants {spec!r} is given twice")
        seen.add(spec)
        out.append((spec, key, int(steps)))
    return out


def source_overrides(key: str) -> list[str]:
    """Config overrides of a variant key's flow start (a source that starts from an action, such as
    ``a2a+last_action_gaussian``, flows in action space)."""
    from a2a_temporal.heads.action.sources import ACTION_SPACE_SOURCES

    source = key.partition("+")[2]
    if not source:
        return []
    return [f"--policy.source={source}"] + (["--policy.flow_space=action"] if source in ACTION_SPACE_SOURCES else [])


def method_of(spec: str) -> str | None:
    """The sampler named in a variant spec (``ddpm/ddim:10`` -> ``ddim``), None for the default."""
    return spec.partition(":")[0].partition("/")[2] or None


def parse_checkpoints(specs: list[str], objectives: set[str]) -> dict[str, str]:
    """``["a2a=DIR", ...]`` -> ``{objective: DIR}``; malformed -> ConfigError."""
    out = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not path or name.partition("+")[0] not in OBJECTIVES:
            raise ConfigError(f"--checkpoint {spec!r}: expected OBJECTIVE[+SOURCE]=DIR with OBJECTIVE one of "
                              f"{list(OBJECTIVES)}")
        if name in out:
            raise ConfigError(f"--checkpoint {spec!r}: objective {name} already has a checkpoint ({out[name]})")
        if name not in objectives:
            raise ConfigError(f"--checkpoint {spec!r}: no variant uses objective {name} (variants' objectives: "
                              f"{sorted(objectives)})")
        out[name] = path
    return out


def check_args(a) -> tuple[list, dict, list[str], list[int]]:
    for name in ("calls", "rounds", "threads"):
        if getattr(a, name) < 1:
            raise ConfigError(f"--{name} must be >= 1, got {getattr(a, name)}")
    variants = parse_variants(a.variants)
    ckpts = parse_checkpoints(a.checkpoint, {v[1] for v in variants})
    bad = [r for r in a.runtimes if r not in RUNTIMES]
    if bad:
        raise ConfigError(f"--runtimes {bad[0]!r} is not one of {list(RUNTIMES)}")
    runtimes = ["eager"] + [r for r in dict.fromkeys(a.runtimes) if r != "eager"]
    if a.device == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("--device cuda: no CUDA GPU is visible to torch here")
        if "ort" in runtimes:
            raise ConfigError("--runtimes ort: the ONNX Runtime session runs on the CPU; drop it with --device cuda")
    text = a.batch_sizes.strip().lower()
    sizes = []
    if text not in ("", "none", "0"):
        for s in text.split(","):
            if not s.strip().isdigit() or int(s) < 1:
                raise ConfigError(f"--batch-sizes {a.batch_sizes!r}: expected positive integers separated by commas")
            sizes.append(int(s))
        sizes = sorted(set(sizes) | {1})
    return variants, ckpts, runtimes, sizes


# ---------------------------------------------------------------------------- set-up
def build_policies(a, variants, ckpts):
    """``({spec: (policy, steps, windows)}, dataset meta)``; one dataset read for all variants."""
    from a2a_temporal.heads.action.factory import make_policy
    from a2a_temporal.policy_setup import TrainPolicyConfig, load_demos, make_windows

    def config_for(key: str):
        name = key.partition("+")[0]
        extra = [f"--policy.objective.name={name}"] + source_overrides(key)
        if name in NO_DIFFERENTIABLE_SAMPLER:
            extra += ["--policy.decoded_rollout_weight=0", "--policy.objective.rollout_weight=0"]
        return load_config(TrainPolicyConfig, a.config, a.overrides + extra)

    cfg = load_config(TrainPolicyConfig, a.config, a.overrides)
    meta, episodes = load_demos(cfg.dataset, cfg.policy)
    windows_of, by_objective, out = {}, {}, {}

    def windows(pc):
        key = (pc.n_obs_steps, pc.n_hist, pc.horizon, pc.resolved_end_padding(), pc.gripper_dims, pc.obs_mode)
        if key not in windows_of:
            windows_of[key] = make_windows(episodes, pc)
        return windows_of[key]

    for spec, name, steps in variants:
        if name not in by_objective:
            if name in ckpts:
                directory = resolve_pretrained(ckpts[name])
                pol = ActionFlowPolicy.from_pretrained(directory)
                pc = pol.config
                objective, _, source = name.partition("+")
                if pc.objective.name != objective or (source and pc.source != source):
                    raise ConfigError(f"--checkpoint {name}={ckpts[name]}: that policy was trained with objective "
                                      f"{pc.objective.name!r} and source {pc.source!r}")
                dims = (meta.state_dim, meta.qpos_dim, meta.action_dim)
                if (pc.state_dim, pc.qpos_dim, pc.action_dim) != dims:
                    raise ConfigError(f"--checkpoint {name}={ckpts[name]}: state/qpos/action dims "
                                      f"{(pc.state_dim, pc.qpos_dim, pc.action_dim)} differ from the dataset's {dims} "
                                      f"({meta.path})")
            else:
                pc = config_for(name).policy
                w = windows(pc)
                pol = make_policy(pc, meta, {"state": w.state, "qpos": w.qpos, "action": w.action})
            by_objective[name] = pol.eval()
        pol = by_objective[name]
        out[spec] = (pol, steps, windows(pol.config))
    return out, meta


def floor_inputs(pol, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Backbone inputs with the tokens of one policy call: ``x (B, N, D)``, ``t (B,)``, ``cond (B, M, Dc)``."""
    with torch.inference_mode():
        hist = pol._history(batch)
        cond = pol._condition(batch, hist)
    B, c = cond.shape[0], pol.config
    shape = (c.latent_tokens, c.latent_dim) if pol.chunk_encoder is not None else (c.horizon, c.action_dim)
    return torch.zeros(B, *shape, device=cond.device), torch.zeros(B, device=cond.device), cond.clone()


def sweep_batch(windows, size: int) -> dict:
    """``size`` windows spread over the dataset (repeated when it has fewer)."""
    n = len(windows)
    idx = np.linspace(0, n - 1, size).round().astype(int) if size <= n else np.arange(size) % n
    return windows.__getitems__(idx.tolist())


def one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:400]


def ort_runtime(pol, steps, batch, floor_args, threads, exporter):
    """``(policy run(B-batch) fn factory, floor fn, info)`` on ONNX Runtime."""
    from a2a_temporal.export import numpy_feeds, export_module, export_onnx, ort_session, policy_inputs

    t0 = time.perf_counter()
    model, used = export_onnx(pol, steps, None, exporter)
    floor_model, _ = export_module(pol.net, floor_args, ["x", "t", "cond"], ["v"], used)
    export_s = time.perf_counter() - t0
    sess, fsess = ort_session(model.SerializeToString(), threads), ort_session(floor_model.SerializeToString(), threads)
    names = [i.name for i in sess.get_inputs()]
    ffeeds = {n: v.numpy() for n, v in zip(["x", "t", "cond"], floor_args)}

    def policy_fn(b):
        feeds = numpy_feeds(b, names)
        return lambda: sess.run(None, feeds)

    got = sess.run(None, numpy_feeds(batch, names))[0]
    want = pol.predict_action_chunk(batch, steps).numpy()
    fgot = fsess.run(None, ffeeds)[0]
    with torch.inference_mode():
        fwant = pol.net(*floor_args).numpy()
    info = {"exporter": used, "export_s": round(export_s, 1), "policy_nodes": len(model.graph.node),
            "floor_nodes": len(floor_model.graph.node), "inputs": policy_inputs(pol.config),
            "max_abs_diff_vs_eager": float(np.abs(got - want).max()),
            "floor_max_abs_diff_vs_eager": float(np.abs(fgot - fwant).max())}
    return policy_fn, (lambda: fsess.run(None, ffeeds)), info


def compile_runtime(pol, steps, batch, floor_args):
    """``(policy fn, floor fn, info)`` with torch.compile (compiled and checked here)."""
    from a2a_temporal.export import policy_inputs

    names = policy_inputs(pol.config)
    plan = pol.inference_plan()
    if plan is None:
        raise RuntimeError(f"objective {pol.objective.name!r} has no folded call to compile")
    bound = plan.bind(steps, None)
    args = tuple(batch[n] for n in names)
    t0 = time.perf_counter()
    cpol, cnet = torch.compile(bound, dynamic=False), torch.compile(pol.net, dynamic=False)
    with torch.inference_mode():
        got = cpol(*args)
        fgot = cnet(*floor_args)
        diff = float((got - pol.predict_action_chunk(batch, steps)).abs().max())
        fdiff = float((fgot - pol.net(*floor_args)).abs().max())
    info = {"compile_s": round(time.perf_counter() - t0, 1), "max_abs_diff_vs_eager": diff,
            "floor_max_abs_diff_vs_eager": fdiff}
    return (lambda: cpol(*args)), (lambda: cnet(*floor_args)), info


def gemm_gflops() -> float:
    """FLOP rate of a plain float32 matmul of the backbone's shapes (the compute ceiling)."""
    x, w = torch.randn(512, 128), torch.randn(512, 128)
    for _ in range(5):
        x @ w.T
    best = math.inf
    for _ in range(30):
        t0 = time.perf_counter()
        x @ w.T
        best = min(best, time.perf_counter() - t0)
    return 2 * 512 * 128 * 512 / best / 1e9


def call_flops(pol, batch, steps: int) -> float:
    """FLOPs of one policy call (matmuls and attention; 2 per multiply-add), counted by running it."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        pol.predict_action_chunk_reference(batch, steps)
    return float(fc.get_total_flops())


# ---------------------------------------------------------------------------- timing
def time_interleaved(items: dict, rounds: int, warmup: int = 2) -> dict[str, dict]:
    """``items[name] = (fn, calls_per_round)``; every round runs each item's calls in turn.
    Returns wall-clock stats (ms) and the calling thread's CPU time per call (p50, ms)."""
    from a2a_temporal.envs.evaluate import latency_stats

    wall = {k: [] for k in items}
    cpu = {k: [] for k in items}
    for fn, _ in items.values():
        for _ in range(warmup):
            fn()
    for _ in range(rounds):
        for k, (fn, n) in items.items():
            w, c = wall[k], cpu[k]
            for _ in range(n):
                c0 = time.thread_time()
                t0 = time.perf_counter()
                fn()
                t1 = time.perf_counter()
                c.append(time.thread_time() - c0)
                w.append(t1 - t0)
    return {k: {**latency_stats(wall[k]), "cpu_p50_ms": float(np.percentile(cpu[k], 50) * 1000)} for k in items}


def estimate(fn, n: int = 2) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


# ---------------------------------------------------------------------------- output
def plot(path: Path, result: dict) -> None:
    """Bars: variants, the floor and the other runtimes' policy / floor (p50, batch 1); the batch sweep."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, sweep = result["rows"], result["batch_sweep"]
    bars = [(r["variant"], r["p50_ms"], "tab:red" if i == 0 else "tab:gray") for i, r in enumerate(rows)]
    bars.append(("floor (eager backbone)", result["floor"]["p50_ms"], "tab:blue"))
    for rt, v in result["runtimes"].items():
        if rt != "eager" and "error" not in v:
            bars += [(f"{rt}: {result['reference']}", v["policy"]["p50_ms"], "tab:orange"),
                     (f"{rt}: floor", v["floor"]["p50_ms"], "tab:cyan")]
    panels = 2 if sweep.get("rows") else 1
    fig, axes = plt.subplots(1, panels, figsize=(7 * panels, 0.9 + 0.45 * len(bars)), squeeze=False)
    ax = axes[0][0]
    names, p50, colors = zip(*bars)
    ax.barh(names, p50, color=colors)
    if max(p50) / min(p50) > 20:
        ax.set_xscale("log")
    else:
        ax.set_xlim(0, max(p50) * 1.35)
    ax.set_xlabel(f"ms per action chunk (p50, batch 1, {result['threads']} thread(s))")
    for y, v in enumerate(p50):
        ax.text(v, y, f" {v:.2f} ms ({v / rows[0]['p50_ms']:.2f}x)", va="center", fontsize=8)
    ax.invert_yaxis()
    if panels == 2:
        ax = axes[0][1]
        for rt, rs in sweep["rows"].items():
            ax.plot([r["batch"] for r in rs], [r["chunks_per_s"] for r in rs], marker="o", label=rt)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size")
        ax.set_ylabel("action chunks / s")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def process_age_s() -> float | None:
    """Wall-clock seconds since this process started (Linux /proc), imports included."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - start_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor()


# ---------------------------------------------------------------------------- main
def _checkpoint_spec(spec: str) -> tuple[str, str, int, int | None]:
    """``NAME=CHECKPOINT:STEPS[/N]`` -> (name, checkpoint, steps, N or None); one-line ConfigErrors."""
    from a2a_temporal.cli import parse_named_spec

    head, sep, tail = spec.rpartition(":")
    n_exec = None
    if sep and "/" in tail:
        tail, _, ne = tail.partition("/")
        try:
            n_exec = int(ne)
        except ValueError:
            n_exec = 0
        if n_exec < 1:
            raise ConfigError(f"--checkpoint {spec!r}: /N (actions executed per call) must be a positive integer, "
                              f"got {ne!r}")
        spec = f"{head}:{tail}"
    name, path, n = parse_named_spec(spec, "--checkpoint")
    return name, path, n, n_exec


def robustness(argv) -> dict:
    """``benchmark robustness``: a suite's levels for several checkpoints (JSON + PNG)."""
    from a2a_temporal.envs.perturb import SUITES
    from a2a_temporal.envs.robustness import plot_sweep, sweep
    from a2a_temporal.envs.seeds import TEST_SEED_START

    p = argparse.ArgumentParser(prog="benchmark robustness", description=robustness.__doc__)
    p.add_argument("--checkpoint", action="append", required=True,
                   help="NAME=CHECKPOINT:STEPS[/N] (repeatable; STEPS: sampler steps of that policy; /N: "
                        "actions of each chunk executed before the next call, default the policy's own)")
    p.add_argument("--suite", required=True, choices=sorted(SUITES))
    p.add_argument("--levels", nargs="+", type=float, default=None, help="default: every level of the suite")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--seed", type=int, default=TEST_SEED_START)
    p.add_argument("--num-envs", type=int, default=2)
    p.add_argument("--max-episode-steps", type=int, default=None, help="default: the task's evaluation horizon")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default="runs/robustness/sweep.json")
    a = p.parse_args(argv)
    if a.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {a.episodes}")
    wall0, cpu0 = time.perf_counter(), time.process_time()
    policies, steps, n_exec = {}, {}, {}
    for spec in a.checkpoint:
        name, path, n, n_exec[name] = _checkpoint_spec(spec)
        if name in policies:
            raise ConfigError(f"--checkpoint {spec!r}: the name {name!r} is given twice")
        policies[name] = ActionFlowPolicy.from_pretrained(resolve_pretrained(path))
        steps[name] = n
    out = Path(a.json)
    results = {}
    for name, pol in policies.items():  # each policy at its own sampler steps, same seeds and perturbations
        res = sweep({name: pol}, a.suite, a.levels, episodes=a.episodes, seed=a.seed, out_dir=out.parent / out.stem,
                    num_inference_steps=steps[name], num_envs=a.num_envs, threads=a.threads,
                    max_episode_steps=a.max_episode_steps, n_action_steps=n_exec[name])
        results.setdefault("base", res)["results"][name] = res["results"][name]
    result = {**results["base"], "checkpoints": {s.split("=", 1)[0]: s.split("=", 1)[1] for s in a.checkpoint},
              "max_episode_steps": a.max_episode_steps,
              "n_action_steps": {k: v for k, v in n_exec.items() if v is not None},
              "wall_s": round(time.perf_counter() - wall0, 1), "cpu_s": round(time.process_time() - cpu0, 1),
              "versions": versions(), "command": _COMMAND}
    write_json_atomic(out, result)
    plot_sweep(result, out.with_suffix(".png"))
    print(f"{'policy':<12}" + "".join(f"{lv:>10g}" for lv in result["levels"]))
    for name, rows in result["results"].items():
        print(f"{name:<12}" + "".join(f"{r['success_once']:>10.2f}" for r in rows))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return result


def train_cost(argv) -> dict:
    """``benchmark train``: time training iterations of several recipes, interleaved (JSON + table)."""
    from a2a_temporal.data.windows import collate_batch
    from a2a_temporal.policy_setup import TrainPolicyConfig, build_training

    p = argparse.ArgumentParser(prog="benchmark train", description=train_cost.__doc__)
    p.add_argument("--config", default="configs/policy/pushcube_state.yaml")
    p.add_argument("--recipes", nargs="+", default=["a2a", "flow", "flow_latent", "ddpm", "regression", "mip"],
                   help="recipe names of configs/policy/recipes/")
    p.add_argument("--recipe-dir", default="configs/policy/recipes")
    p.add_argument("--iterations", type=int, default=40, help="timed iterations per recipe (after 3 warm-up)")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default="runs/benchmark/train_cost.json")
    a, overrides = p.parse_known_args(argv)
    if a.iterations < a.rounds or a.rounds < 1:
        raise ConfigError(f"--iterations ({a.iterations}) must be >= --rounds ({a.rounds}) >= 1")
    torch.set_num_threads(a.threads)
    wall0, cpu0, load0 = time.perf_counter(), time.process_time(), os.getloadavg()
    runs, budget = {}, None
    for name in a.recipes:
        recipe = Path(a.recipe_dir) / f"{name}.yaml"
        if not recipe.is_file():
            raise ConfigError(f"--recipes {name}: no {recipe}")
        cfg = load_config(TrainPolicyConfig, [a.config, recipe], overrides)
        budget = cfg.train.iterations
        torch.manual_seed(0)
        _, data, policy = build_training(cfg)
        opt = torch.optim.AdamW(policy.parameters(), lr=cfg.train.lr)
        gen = np.random.default_rng(0)
        batches = [collate_batch(data.__getitems__(gen.integers(0, len(data), cfg.train.batch_size).tolist()))
                   for _ in range(8)]
        runs[name] = (policy.train(), opt, batches, [], [])

    def step(policy, opt, batch):
        loss, _ = policy(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for policy, opt, batches, _, _ in runs.values():  # warm-up
        for b in batches[:3]:
            step(policy, opt, b)
    per_round = a.iterations // a.rounds
    for _ in range(a.rounds):
        for policy, opt, batches, walls, cpus in runs.values():
            for i in range(per_round):
                t0, c0 = time.perf_counter(), time.process_time()
                step(policy, opt, batches[i % len(batches)])
                walls.append(time.perf_counter() - t0)
                cpus.append(time.process_time() - c0)
    rows = []
    for name, (policy, _, batches, walls, cpus) in runs.items():
        s_it, cpu_it = float(np.median(walls)), float(np.median(cpus))
        rows.append({"recipe": name, "objective": policy.config.objective.name, "space": policy.config.flow_space,
                     "s_per_iteration": s_it, "cpu_s_per_iteration": cpu_it, "iterations_timed": len(walls),
                     "budget_iterations": budget, "projected_min": s_it * budget / 60,
                     "projected_cpu_min": cpu_it * budget / 60})
    ref = rows[0]["s_per_iteration"]
    for r in rows:
        r["ratio_to_first"] = r["s_per_iteration"] / ref
    result = {"config": a.config, "threads": a.threads, "overrides": overrides, "rows": rows,
              "wall_s": round(time.perf_counter() - wall0, 1), "cpu_s": round(time.process_time() - cpu0, 1),
              "load_avg_start": load0[0], "load_avg_end": os.getloadavg()[0], "processor": _cpu_name(),
              "versions": versions(), "command": _COMMAND}
    out = Path(a.json)
    write_json_atomic(out, result)
    print(f"{'recipe':<14}{'s / it':>10}{'CPU s / it':>12}{'x first':>9}{'min / budget':>14}")
    for r in rows:
        print(f"{r['recipe']:<14}{r['s_per_iteration']:>10.3f}{r['cpu_s_per_iteration']:>12.3f}"
              f"{r['ratio_to_first']:>9.2f}{r['projected_min']:>14.1f}")
    print(f"wrote {out}")
    return result


# the command line of this run, recorded in every result file (the README prints it under each table)
_COMMAND = "python tools/benchmark.py"


@run_cli
def main(argv=None) -> dict:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    global _COMMAND
    _COMMAND = "python tools/benchmark.py " + shlex.join(argv)
    if argv[:1] == ["robustness"]:
        return robustness(argv[1:])
    if argv[:1] == ["train"]:
        return train_cost(argv[1:])
    wall0, cpu0, load0 = time.perf_counter(), time.process_time(), os.getloadavg()
    a = parse(argv)
    variants, ckpts, runtimes, sizes = check_args(a)
    torch.set_num_threads(a.threads)
    policies, meta = build_policies(a, variants, ckpts)
    device = torch.device(a.device)
    on_gpu = device.type == "cuda"
    for p, _, _ in policies.values():
        p.to(device)

    def window_batch(w, idx):
        return move_to(w.__getitems__(idx), device)

    def synced(fn):  # a GPU call is timed to its end, not to its launch
        return (lambda: (fn(), torch.cuda.synchronize())[0]) if on_gpu else fn

    ref = variants[0][0]
    pol, steps, windows = policies[ref]
    batch = window_batch(windows, [len(windows) // 2])
    per_round = max(1, a.calls // a.rounds)
    items: dict[str, tuple] = {}
    for spec, (p, s, w) in policies.items():
        b = batch if p is pol else window_batch(w, [len(w) // 2])
        m = method_of(spec)
        items[f"variant:{spec}"] = (synced(lambda p=p, b=b, s=s, m=m: p.predict_action_chunk(b, s, m)), per_round)
    floor_args = floor_inputs(pol, batch)
    items["eager:floor"] = (synced(lambda: pol.net(*floor_args)), per_round)

    # Runtimes beside eager (set up here: exports and compilation are not timed).
    runtime_info: dict[str, dict] = {"eager": {"policy": f"variant:{ref}", "floor": "eager:floor"}}
    policy_fns: dict[str, object] = {"eager": lambda b: synced(lambda: pol.predict_action_chunk(b, steps))}
    for rt in runtimes[1:]:
        try:
            if rt == "ort":
                make_fn, floor_fn, info = ort_runtime(pol, steps, batch, floor_args, a.threads, a.onnx_exporter)
                items["ort:policy"], policy_fns["ort"] = (make_fn(batch), per_round), make_fn
            else:
                pfn, floor_fn, info = compile_runtime(pol, steps, batch, floor_args)
                items["compile:policy"] = (synced(pfn), per_round)
            items[f"{rt}:floor"] = (synced(floor_fn), per_round)
            runtime_info[rt] = {"policy": f"{rt}:policy", "floor": f"{rt}:floor", **info}
        except Exception as e:  # a runtime that does not work here is a result, not a crash
            runtime_info[rt] = {"error": one_line(e)}

    # Breakdown: stages of the reference call, folded and reference paths.
    breakdown: dict[str, dict] = {}
    for path, folded in (("folded", True), ("reference", False)):
        if on_gpu:  # the stages would each need their own synchronize: not measured there
            breakdown[path] = {"error": "not measured on a GPU"}
            continue
        try:
            stages = pol.inference_stages(batch, steps, folded=folded)
        except Exception as e:
            breakdown[path] = {"error": one_line(e)}
            continue
        total = (lambda: pol.predict_action_chunk(batch, steps)) if folded else \
            (lambda: pol.predict_action_chunk_reference(batch, steps))
        items[f"{path}:total"] = (total, per_round)
        for name, fn in stages.items():
            items[f"{path}:{name}"] = (fn, per_round)
        breakdown[path] = {"stages": list(stages)}

    # Batch sweep: calls per round sized from a quick estimate to fit --sweep-seconds.
    sweep_items = {}
    with torch.inference_mode():
        for rt, make in policy_fns.items():
            for B in sizes:
                fn = make(move_to(sweep_batch(windows, B), device))
                n = max(1, int(a.sweep_seconds / a.rounds / max(estimate(fn), 1e-6)))
                sweep_items[f"sweep:{rt}:{B}"] = (fn, n)
    items.update(sweep_items)

    with torch.inference_mode():
        stats = time_interleaved(items, a.rounds)

    # ------------------------------------------------------------------ results
    ref_p50 = stats[f"variant:{ref}"]["p50_ms"]
    floor_p50 = stats["eager:floor"]["p50_ms"]
    rows = []
    for spec, (p, s, _) in policies.items():
        st = stats[f"variant:{spec}"]
        rows.append({"variant": spec, "objective": p.objective.name, "steps": s,
                     "model_calls": p.objective.model_calls(s, method_of(spec)), "method": method_of(spec),
                     "p50_ms": st["p50_ms"], "p95_ms": st["p95_ms"], "mean_ms": st["mean_ms"], "min_ms": st["min_ms"],
                     "cpu_p50_ms": st["cpu_p50_ms"], "ratio_to_reference": st["p50_ms"] / ref_p50,
                     "floor_ratio": st["p50_ms"] / floor_p50})
    rt_out = {}
    for rt, info in runtime_info.items():
        if "error" in info:
            rt_out[rt] = info
            continue
        ps, fs = stats[info.pop("policy")], stats[info.pop("floor")]
        rt_out[rt] = {"policy": ps, "floor": fs, "floor_ratio": ps["p50_ms"] / fs["p50_ms"], **info}
    for path, info in breakdown.items():
        if "error" in info:
            continue
        names = info.pop("stages")
        total = stats[f"{path}:total"]["p50_ms"]
        parts = {n: stats[f"{path}:{n}"]["p50_ms"] for n in names}
        info.update({"total_ms": total, "stages_ms": parts, "overhead_ms": total - sum(parts.values()),
                     "overhead_share": (total - sum(parts.values())) / total})
    sweep_out: dict = {"rows": {}}
    if sizes:
        for rt in policy_fns:
            rs = []
            for B in sizes:
                st = stats[f"sweep:{rt}:{B}"]
                rs.append({"batch": B, "p50_ms": st["p50_ms"], "calls": st["calls"],
                           "chunks_per_s": B / st["p50_ms"] * 1000})
            for r in rs:
                r["ratio_to_batch1"] = r["chunks_per_s"] / rs[0]["chunks_per_s"]
            sweep_out["rows"][rt] = rs
    if sizes and not on_gpu:  # the ceiling's matmul rate is the CPU's
        gflops = gemm_gflops()
        flops = call_flops(pol, batch, steps)
        ceiling = gflops * 1e9 / flops  # chunks/s if every FLOP ran at the matmul rate
        sweep_out.update({"flops_per_chunk": flops, "matmul_gflops": gflops, "ceiling_chunks_per_s": ceiling,
                          "ceiling_ratio_to_batch1": {rt: ceiling / rs[0]["chunks_per_s"]
                                                      for rt, rs in sweep_out["rows"].items()}})
    params = sum(p.numel() for p in pol.parameters())
    wall, cpu, age = time.perf_counter() - wall0, time.process_time(), process_age_s()
    result = {"reference": ref, "device": torch.cuda.get_device_name(device) if on_gpu else "cpu", "threads": a.threads,
              "batch_size": 1, "calls_per_variant": per_round * a.rounds,
              "rounds": a.rounds, "config": a.config, "overrides": a.overrides, "dataset": meta.path,
              "backbone_parameters": params, "policy_parameters": params,
              "floor_parameters": sum(p.numel() for p in pol.net.parameters()),
              "floor": {"what": "FlowTransformer.forward (eager)", "x_tokens": list(floor_args[0].shape[1:]),
                        "cond_tokens": list(floor_args[2].shape[1:]), **stats["eager:floor"]},
              "floor_ratio": ref_p50 / floor_p50, "rows": rows, "runtimes": rt_out, "breakdown": breakdown,
              "batch_sweep": sweep_out,
              "process": {"wall_s": age or wall, "cpu_s": cpu, "cpu_over_wall": cpu / (age or wall),
                          "main_wall_s": wall, "main_cpu_s": cpu - cpu0,
                          "loadavg_start": list(load0), "loadavg_end": list(os.getloadavg())},
              "processor": _cpu_name(), "cpu_count": os.cpu_count(), "versions": versions(),
              "command": _COMMAND}
    out = Path(a.json)
    write_json_atomic(out, result)
    plot(out.with_suffix(".png"), result)
    print_table(result)
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return result


def print_table(r: dict) -> None:
    ref = r["reference"]
    print(f"{'variant':<16}{'calls':>6}{'p50 ms':>10}{'p95 ms':>10}{'x ' + ref:>12}{'x floor':>10}")
    for row in r["rows"]:
        print(f"{row['variant']:<16}{row['model_calls']:>6}{row['p50_ms']:>10.3f}{row['p95_ms']:>10.3f}"
              f"{row['ratio_to_reference']:>12.2f}{row['floor_ratio']:>10.2f}")
    print(f"{'floor (backbone)':<16}{'':>6}{r['floor']['p50_ms']:>10.3f}{r['floor']['p95_ms']:>10.3f}")
    print(f"\nruntime    policy p50 ms   floor p50 ms   floor_ratio   ({ref}, batch 1, {r['threads']} thread(s))")
    for rt, v in r["runtimes"].items():
        if "error" in v:
            print(f"{rt:<10} error: {v['error']}")
        else:
            print(f"{rt:<10}{v['policy']['p50_ms']:>14.3f}{v['floor']['p50_ms']:>15.3f}{v['floor_ratio']:>14.2f}")
    bd = {k: v for k, v in r["breakdown"].items() if "error" not in v}
    if bd:
        paths = list(bd)
        print(f"\nbreakdown of {ref} (eager, p50 ms)" + "".join(f"{p:>12}" for p in paths))
        for name in bd[paths[0]]["stages_ms"]:
            print(f"  {name:<34}" + "".join(f"{bd[p]['stages_ms'].get(name, float('nan')):>12.3f}" for p in paths))
        print(f"  {'overhead (total - stages)':<34}" + "".join(f"{bd[p]['overhead_ms']:>12.3f}" for p in paths))
        print(f"  {'total':<34}" + "".join(f"{bd[p]['total_ms']:>12.3f}" for p in paths))
    sw = r["batch_sweep"]
    for rt, rs in sw.get("rows", {}).items():
        print(f"\nbatch sweep ({rt}): " + "  ".join(
            f"B={x['batch']}: {x['chunks_per_s']:.0f}/s ({x['ratio_to_batch1']:.1f}x)" for x in rs))
    if sw.get("ceiling_chunks_per_s"):
        print(f"compute ceiling: {sw['flops_per_chunk'] / 1e6:.1f} MFLOP per chunk at {sw['matmul_gflops']:.0f} "
              f"GFLOP/s (plain matmul, same run) = {sw['ceiling_chunks_per_s']:.0f} chunks/s, "
              + ", ".join(f"{v:.1f}x batch 1 ({k})" for k, v in sw["ceiling_ratio_to_batch1"].items()))
    p = r["process"]
    print(f"\nprocess (imports included): wall {p['wall_s']:.1f} s, CPU {p['cpu_s']:.1f} s ({p['cpu_over_wall']:.2f} "
          f"cores busy; main(): wall {p['main_wall_s']:.1f} s, CPU {p['main_cpu_s']:.1f} s); load average "
          f"{p['loadavg_start'][0]:.1f} -> {p['loadavg_end'][0]:.1f} on {r['cpu_count']} CPUs")


if __name__ == "__main__":
    main()
