#!/usr/bin/env python
"""One cell of the policy results: demos (if missing) -> training -> test evaluation(s).

    .venv/bin/python scripts/policy_run.py TASK RECIPE --seed K [--tag NAME] [--eval SPEC ...]
        [--split test|validation] [--validation-only] [--demos N] [-- DOTTED OVERRIDES ...]

    TASK    pushcube | pickcube | stackcube | peginsertion  (configs/policy/TASK_state.yaml)
            pickcube_rgb  (configs/policy/pickcube_rgb.yaml: 64 px camera images + proprioception)
            pickcube_rgb_aux  (the same with keypoint pooling and the cube-position auxiliary loss)
            pushcube_rgb, pushcube_rgb_aux  (the same two on PushCube)
    RECIPE  a file of configs/policy/recipes/ (a2a, flow, ddpm, regression, mip, ...)
    SPEC    STEPS or METHOD:STEPS, e.g. 1, 10, ddim:10 (default: the objective's default steps), optionally
            /N: execute N actions of each chunk before the next policy call (1/1 re-plans every step),
            ~M: temporal ensembling with ACT's weight M (1/1~0.01: ACT's setting)

Writes ``runs/policy/TASK/RECIPE[+TAG]/seedK/`` (training output, ``eval/test_*.json`` over 100
test episodes from seed 1,000,000 on the ``best`` checkpoint chosen on validation seeds) and
``run_info.json`` with the exact commands (``--split validation``: ``eval/val_*.json`` on
validation seeds from 500,000, to choose an evaluation setting before it is run on test seeds), which ``tools/policy_table.py`` prints beside each row.
Every stage that is complete is skipped on a second run; an interrupted training resumes.
"""
from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
sys.path.insert(0, str(ROOT))
from a2a_temporal.envs.seeds import TEST_SEED_START, VALIDATION_SEED_START  # noqa: E402
from a2a_temporal.utils import write_json_atomic  # noqa: E402
# task -> its config in configs/policy/ (environment, control mode, demos, budget)
TASKS = {"pushcube": "pushcube_state.yaml", "pickcube": "pickcube_state.yaml", "stackcube": "stackcube_state.yaml",
         "peginsertion": "peginsertion_state.yaml", "pickcube_rgb": "pickcube_rgb.yaml",
         "pickcube_rgb_aux": "pickcube_rgb_aux.yaml", "pushcube_rgb": "pushcube_rgb.yaml",
         "pushcube_rgb_aux": "pushcube_rgb_aux.yaml"}
RGB_IMAGE_SIZE = 64  # camera resolution of the rgb demos (the rgb configs' encoders are sized for it)


def yaml_get(path: Path, *keys):
    import yaml

    node = yaml.safe_load(path.read_text())
    for k in keys:
        node = (node or {}).get(k)
    return node


def run(cmd: list[str]) -> None:
    print("+", " ".join(shlex.quote(str(c)) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT)


def parse_spec(full_spec: str) -> tuple[str, str, str, str, str]:
    """``[METHOD:]STEPS[/N][~M]`` -> (method, steps, n_exec, ensemble, file tag); empty strings for
    what is not given; ``""`` is the objective's default sampler. ``ddim:10/4~0.1`` ->
    ("ddim", "10", "4", "0.1", "ddim-10step-exec4-ens0.1")."""
    spec, _, ens = full_spec.partition("~")
    spec, _, n_exec = spec.partition("/")
    method, _, steps = spec.rpartition(":") if ":" in spec else ("", "", spec)
    for what, text, kind in (("STEPS", steps, int), ("/N", n_exec, int), ("~M", ens, float)):
        try:
            ok = not text or (kind(text) > 0 if kind is int else math.isfinite(float(text)))
        except ValueError:
            ok = False
        if not ok:
            raise ValueError(f"--eval {full_spec!r}: {what} = {text!r} is not a "
                             f"{'positive integer' if kind is int else 'finite number'} "
                             "(expected [METHOD:]STEPS[/N][~M], e.g. 1, ddim:10, 1/12, 1/1~0.01)")
    tag = f"{method + '-' if method else ''}{steps + 'step' if steps else 'default'}"
    tag += f"-exec{n_exec}" if n_exec else ""
    tag += f"-ens{ens}" if ens else ""
    return method, steps, n_exec, ens, tag


def build_parser() -> argparse.ArgumentParser:
    """The command line of one cell (also read by scripts/parallel_train.py)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("task", choices=sorted(TASKS))
    p.add_argument("recipe")
    p.add_argument("--seed", type=int, default=0, help="training seed")
    p.add_argument("--tag", default="", help="suffix of the run name for sweep variants")
    p.add_argument("--eval", action="append", default=[],
                   help="STEPS or METHOD:STEPS, optionally /N actions per call and ~M temporal ensembling (repeatable)")
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--split", choices=["test", "validation"], default="test",
                   help="seeds of the --eval runs: test (1,000,000+) or validation (500,000+, for choosing a setting)")
    p.add_argument("--validation-only", action="store_true", help="train only (sweeps select on validation)")
    p.add_argument("--runs", default="runs/policy")
    p.add_argument("--demos", type=int, default=100,
                   help="motion-planned demos to train on (the task config's dataset has 100; another count is "
                        "generated beside it, e.g. data/StackCube-v1/state-pd_ee_delta_pos-300)")
    return p


def rel(path: Path) -> Path:
    """``path`` relative to the repository when it lies inside it (commands stay short), else as is."""
    path = Path(path).resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def run_dir(a: argparse.Namespace) -> Path:
    """The cell's folder, relative to the repository: RUNS/TASK/RECIPE[+TAG]/seedK."""
    return Path(a.runs) / a.task / (a.recipe + (f"+{a.tag}" if a.tag else "")) / f"seed{a.seed}"


def split_overrides(words: list[str]) -> tuple[list[str], list[str]]:
    """``[cell arguments] [-- dotted overrides]`` -> (cell arguments, overrides)."""
    if "--" in words:
        i = words.index("--")
        return words[:i], words[i + 1:]
    return list(words), []


def main(argv=None) -> int:
    argv, overrides = split_overrides(list(sys.argv[1:] if argv is None else argv))
    p = build_parser()
    a = p.parse_args(argv)
    for full_spec in a.eval:  # before any demo or training work
        try:
            parse_spec(full_spec)
        except ValueError as e:
            p.error(str(e))
    task_cfg = ROOT / "configs/policy" / TASKS[a.task]
    recipe = ROOT / f"configs/policy/recipes/{a.recipe}.yaml"
    if not recipe.is_file():
        known = sorted(x.stem for x in (ROOT / "configs/policy/recipes").glob("*.yaml"))
        p.error(f"no recipe {recipe} (known: {', '.join(known)})")
    out = (ROOT / run_dir(a)).resolve()
    info_path = out / "run_info.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}

    if a.demos < 1:
        p.error(f"--demos {a.demos}: expected a positive number of demos")
    h5 = ROOT / yaml_get(task_cfg, "dataset", "path")
    data_override = []
    if a.demos != 100:  # the configs' datasets are named <obs>-<control>-100
        prefix, _, count = h5.parent.name.rpartition("-")
        if count != "100":
            p.error(f"{task_cfg}: dataset.path {h5} does not end in a -100 folder; --demos cannot place {a.demos} demos")
        h5 = h5.parent.parent / f"{prefix}-{a.demos}" / h5.name
        data_override = [f"--dataset.path={rel(h5)}"]
    if not h5.is_file():
        env_id = yaml_get(task_cfg, "policy", "env_id")
        control = yaml_get(task_cfg, "policy", "control_mode")
        obs_mode = yaml_get(task_cfg, "policy", "obs_mode") or "state"
        image = ["--image-size", str(RGB_IMAGE_SIZE)] if obs_mode == "rgb" else []
        run([PY, "tools/generate_demos.py", "--env-id", env_id, "--num-demos", str(a.demos), "--obs-mode", obs_mode,
             *image, "--control-mode", control, "--out", h5.parent, "--quiet"])

    train_cmd = [PY, "tools/train_policy.py", "--config", rel(task_cfg), "--config",
                 rel(recipe), "--output-dir", rel(out), f"--train.seed={a.seed}", *data_override,
                 *overrides]
    if not (out / "train_summary.json").is_file():
        resume = ["--train.resume=true"] if (out / "checkpoints" / "last").exists() else []
        t0 = time.time()
        run(train_cmd + resume)
        info["train_started"] = t0
    def cell_command(evals: list[str]) -> str:
        return " ".join(["scripts/policy_run.py", a.task, a.recipe, f"--seed {a.seed}"]
                        + ([f"--tag {a.tag}"] if a.tag else []) + ([f"--demos {a.demos}"] if a.demos != 100 else [])
                        + ([f"--split {a.split}"] if a.split != "test" else [])
                        + [f"--eval {e}" for e in evals] + (["--", *overrides] if overrides else []))

    info.update({"task": a.task, "recipe": a.recipe, "tag": a.tag, "seed": a.seed, "overrides": overrides, "demos": a.demos,
                 "train_command": " ".join(shlex.quote(str(c)) for c in ["python", *train_cmd[1:]])})
    if a.split == "test" and not a.validation_only:  # the first test invocation's command; each evaluation's own is in eval_commands
        info.setdefault("run_command", cell_command(a.eval))
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(info_path, info)
    if a.validation_only:
        return 0
    for full_spec in a.eval or [""]:
        method, steps, n_exec, ens, tag = parse_spec(full_spec)
        js = out / "eval" / f"{'test' if a.split == 'test' else 'val'}_{tag}.json"
        info.setdefault("eval_commands", {})[js.name] = cell_command([full_spec] if full_spec else [])
        write_json_atomic(info_path, info)
        done = json.loads(js.read_text()) if js.is_file() else {}
        if done.get("complete") and done.get("episodes") == a.episodes:
            print(f"{js}: complete, skipped")
            continue
        cmd = [PY, "tools/eval_policy.py", "--checkpoint", rel(out / "checkpoints" / "best"),
               "--episodes", str(a.episodes), "--json", rel(js), "--quiet",
               "--seed", str(TEST_SEED_START if a.split == "test" else VALIDATION_SEED_START)]
        if steps:
            cmd += ["--num-inference-steps", steps]
        if method:
            cmd += ["--method", method]
        if n_exec:
            cmd += ["--n-action-steps", n_exec]
        if ens:
            cmd += ["--temporal-ensemble", ens]
        run(cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
