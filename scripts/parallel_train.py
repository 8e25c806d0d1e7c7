#!/usr/bin/env python
"""Train several policy runs side by side on one machine (e.g. one GPU) within a wall-clock budget.

    python scripts/parallel_train.py --budget-s 400 --pack-dir PACKS \
        --run "peginsertion a2a --seed 0 --tag k1_nocons_300demos_gpu --demos 300 -- --policy.objective.rollout_k=1" \
        --run "peginsertion flow --seed 0 --tag 300demos_gpu --demos 300" ...

Each ``--run`` is a ``scripts/policy_run.py`` cell (training only: ``--validation-only``). The
iteration count is not guessed: every run first trains ``--probe-iterations`` iterations (all
runs at once, into a scratch folder), the slowest run's rate sets the count that fits the budget
(rounded down to ``--round``), and the same count goes to every run, with a checkpoint at its half
and at its end (``--train.save_every``) and no in-training evaluation (the machine may have no
simulator: ``best`` is chosen afterwards on validation seeds with ``tools/eval_policy.py``). A run
still going at ``--hard-limit-s`` is stopped; its half-way checkpoint stays.

``--pack-dir``: ``runs.tar`` holding what the evaluation needs (each run's run_info.json,
run_config.json, metrics.jsonl, train_summary.json and its checkpoints' pretrained_model/; paths
relative to the repository root) and every process's output under ``logs/``, cut into parts of
at most ``--part-mb`` MiB (``runs.tar.part00``, ...; restore with ``cat runs.tar.part* | tar x``
in the repository), and ``parallel_train.json`` (the rates, the chosen count, the device, each
run's wall time, which checkpoints were packed). Every run's final checkpoint is packed; the
half-way ones follow, in run order, while the pack stays under ``--pack-max-mb`` (a machine that
hands back a limited amount of data: the skipped ones are listed).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
import policy_run  # noqa: E402
from a2a_temporal.utils import write_json_atomic  # noqa: E402


def split_run(spec: str) -> tuple[list[str], list[str]]:
    """``"TASK RECIPE [options] [-- overrides]"`` -> (policy_run arguments, dotted overrides)."""
    args, overrides = policy_run.split_overrides(shlex.split(spec))
    if len(args) < 2:
        raise ValueError(f"--run {spec!r}: expected 'TASK RECIPE [options] [-- overrides]'")
    return args, overrides


def run_dir(args: list[str], runs: str = "runs/policy") -> Path:
    """The folder scripts/policy_run.py writes for these arguments (its own parser and naming rule;
    arguments it refuses end the program there, before anything trains)."""
    return policy_run.run_dir(policy_run.build_parser().parse_args([*args, "--runs", runs]))


def launch(cmd: list[str], log: Path) -> subprocess.Popen:
    print("+", " ".join(shlex.quote(c) for c in cmd), flush=True)
    fh = open(log, "w")
    return subprocess.Popen(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def wait_all(procs: list[subprocess.Popen], deadline: float) -> list[int | None]:
    """Wait for every process; kill those still running at ``deadline`` (returns None for them)."""
    codes: list[int | None] = [None] * len(procs)
    while any(c is None for c in codes):
        for i, pr in enumerate(procs):
            if codes[i] is None and pr.poll() is not None:
                codes[i] = pr.returncode
        if time.time() > deadline:
            for i, pr in enumerate(procs):
                if codes[i] is None:
                    pr.kill()
                    pr.wait()
            break
        time.sleep(1)
    return codes


def steady_rate(run: Path) -> float:
    """Iterations per second of a run's last logged window (start-up excluded), else of the whole run."""
    windows = [json.loads(ln).get("iterations_per_s") for ln in (run / "metrics.jsonl").read_text().splitlines()
               if ln.strip()] if (run / "metrics.jsonl").is_file() else []
    windows = [w for w in windows if w]
    if windows:
        return float(windows[-1])
    s = json.loads((run / "train_summary.json").read_text())
    return s["iterations"] / s["train_time_s"]


def device_name() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0).removeprefix("NVIDIA ")
    except Exception:  # noqa: BLE001 - a description only
        pass
    return f"cpu ({os.cpu_count()} cores)"


def pack_plan(runs: list[Path], max_bytes: float) -> tuple[list[Path], list[Path]]:
    """What to pack: each run's record files and final checkpoint, then the earlier checkpoints in
    run order while the total stays under ``max_bytes``. Returns (files and folders, skipped folders)."""
    def size(path: Path) -> int:
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size

    items, later = [], []
    for run in runs:
        items += [run / n for n in ("run_info.json", "run_config.json", "metrics.jsonl", "train_summary.json")
                  if (run / n).is_file()]
        steps = [d / "pretrained_model" for d in sorted((run / "checkpoints").glob("[0-9]*"))
                 if (d / "pretrained_model").is_dir()]
        if steps:
            items.append(steps[-1])
            later += steps[:-1]
    total = sum(size(x) for x in items)
    skipped = []
    for step in later:
        n = size(step)
        if total + n <= max_bytes:
            items.append(step)
            total += n
        else:
            skipped.append(step)
    return items, skipped


def write_parts(items: list[Path], logs: Path, out_dir: Path, part_bytes: int, base: Path = ROOT) -> list[str]:
    """``runs.tar`` of ``items`` (named relative to ``base``, the repository) and ``logs/``, cut into parts."""
    tar_path = out_dir / "runs.tar"
    with tarfile.open(tar_path, "w") as tar:
        for x in items:
            tar.add(x, arcname=str(x.resolve().relative_to(base.resolve())))
        tar.add(logs, arcname="logs")
    parts = []
    with open(tar_path, "rb") as src:
        while chunk := src.read(part_bytes):
            part = out_dir / f"runs.tar.part{len(parts):02d}"
            part.write_bytes(chunk)
            parts.append(part.name)
    tar_path.unlink()
    return parts


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", action="append", required=True, help="scripts/policy_run.py arguments (repeatable)")
    p.add_argument("--budget-s", type=float, required=True, help="wall-clock seconds for the training proper")
    p.add_argument("--hard-limit-s", type=float, default=0,
                   help="stop runs still going this long after their start (default 1.25 x budget + 60 s)")
    p.add_argument("--probe-iterations", type=int, default=300)
    p.add_argument("--safety", type=float, default=0.85, help="fraction of the probed rate to plan with")
    p.add_argument("--round", type=int, default=1000, help="round the iteration count down to a multiple of this")
    p.add_argument("--max-iterations", type=int, default=0, help="cap on the iteration count (0: none)")
    p.add_argument("--pack-dir", default="", help="write runs.tar.partNN and parallel_train.json here")
    p.add_argument("--pack-max-mb", type=float, default=60.0, help="checkpoints beyond each run's last stop here")
    p.add_argument("--part-mb", type=float, default=15.0, help="largest part of runs.tar, MiB")
    p.add_argument("--logs", default="", help="log folder (default: a temporary one; packed into runs.tar under logs/)")
    a = p.parse_args(argv)
    if a.budget_s <= 0 or a.probe_iterations < 10 or a.round < 2:
        p.error("expected --budget-s > 0, --probe-iterations >= 10 and --round >= 2")
    try:
        runs = [split_run(s) for s in a.run]
    except ValueError as e:
        p.error(str(e))
    for args, _ in runs:  # a malformed cell stops here, before any training
        run_dir(args)
    logs = Path(a.logs or tempfile.mkdtemp(prefix="parallel_train_logs_"))
    logs.mkdir(parents=True, exist_ok=True)
    if a.pack_dir:
        Path(a.pack_dir).mkdir(parents=True, exist_ok=True)
    report: dict = {"device": device_name(), "runs": [], "budget_s": a.budget_s}

    # 1. probe: every run's own config, all at once, a few hundred iterations into scratch folders
    (ROOT / "runs").mkdir(exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="probe_", dir=ROOT / "runs"))  # policy_run writes under the repo
    procs = []
    for k, (args, overrides) in enumerate(runs):
        info_cmd = [PY, "scripts/policy_run.py", *args, "--validation-only", "--runs", str((scratch / f"r{k}").relative_to(ROOT)), "--",
                    *overrides, f"--train.iterations={a.probe_iterations}", "--eval.episodes=0",
                    f"--train.warmup_iterations={min(100, a.probe_iterations // 2)}",
                    f"--train.log_every={max(1, a.probe_iterations // 3)}"]
        procs.append(launch(info_cmd, logs / f"probe{k}.log"))
    t0 = time.time()
    codes = wait_all(procs, t0 + 600)
    rates = []
    for k, (args, _) in enumerate(runs):
        summ = run_dir(args, str(scratch / f"r{k}")) / "train_summary.json"
        if codes[k] != 0 or not summ.is_file():
            print(f"probe of run {k} failed (exit {codes[k]}); see {logs / f'probe{k}.log'}", file=sys.stderr)
            print((logs / f"probe{k}.log").read_text()[-3000:], file=sys.stderr)
            return 1
        rates.append(steady_rate(summ.parent))
    report["probe"] = {"iterations": a.probe_iterations, "wall_s": round(time.time() - t0, 1),
                       "iterations_per_s": [round(r, 1) for r in rates]}
    n = int(a.safety * min(rates) * a.budget_s) // a.round * a.round
    if a.max_iterations:
        n = min(n, a.max_iterations)
    if n < a.round:
        print(f"the slowest run does {min(rates):.1f} it/s: not {a.round} iterations in {a.budget_s} s", file=sys.stderr)
        return 1
    half = n // 2
    report["iterations"] = n
    print(f"probe rates {[round(r, 1) for r in rates]} it/s -> {n} iterations each", flush=True)

    # 2. the runs proper
    extra = [f"--train.iterations={n}", f"--train.save_every={half}", "--train.keep_last=2", "--eval.episodes=0"]
    procs, t0 = [], time.time()
    for k, (args, overrides) in enumerate(runs):
        cmd = [PY, "scripts/policy_run.py", *args, "--validation-only", "--", *overrides, *extra]
        procs.append(launch(cmd, logs / f"run{k}.log"))
        report["runs"].append({"args": args, "overrides": overrides + extra, "dir": str(run_dir(args))})
    codes = wait_all(procs, t0 + (a.hard_limit_s or 1.25 * a.budget_s + 60))
    for k, (args, _) in enumerate(runs):
        rd = ROOT / run_dir(args)
        summ = rd / "train_summary.json"
        entry = report["runs"][k]
        entry["exit"] = codes[k]
        if summ.is_file():
            s = json.loads(summ.read_text())
            entry.update({"train_time_s": s.get("train_time_s"), "iterations_done": s.get("iterations")})
        info_path = rd / "run_info.json"
        if info_path.is_file():  # where it trained, and beside how many others (the tables say so)
            info = json.loads(info_path.read_text())
            info.update({"trained_on": report["device"], "trained_alongside": len(runs) - 1})
            write_json_atomic(info_path, info)
    report["wall_s"] = round(time.time() - t0, 1)
    if a.pack_dir:
        items, skipped = pack_plan([ROOT / run_dir(args) for args, _ in runs], a.pack_max_mb * 2**20)
        for entry in report["runs"]:
            entry["packed_steps"] = [x.parent.name for x in items if x.name == "pretrained_model"
                                     and x.parents[2] == ROOT / entry["dir"]]
            entry["skipped_steps"] = [x.parent.name for x in skipped if x.parents[2] == ROOT / entry["dir"]]
        report["parts"] = write_parts(items, logs, Path(a.pack_dir), int(a.part_mb * 2**20))
        write_json_atomic(Path(a.pack_dir) / "parallel_train.json", report)
    print(json.dumps({k: report[k] for k in ("device", "probe", "iterations", "wall_s")}))
    for e in report["runs"]:
        print(f"{e['dir']}: exit {e['exit']}, {e.get('iterations_done')} iterations, {e.get('train_time_s')} s")
    return 0 if all(c == 0 for c in codes) else 1


if __name__ == "__main__":
    sys.exit(main())
