"""Export a trained policy's whole inference call to one ONNX graph, checked against PyTorch.

    python tools/export_policy.py runs/push/checkpoints/last --out runs/push/policy.onnx \
        [--num-inference-steps 1] [--method euler] [--dataset PATH] [--batches 1000] [--tolerance 1e-4]

The graph takes ``state``, ``qpos_hist``, ``prev_action``, ``prev_action_is_pad`` [, ``image``]
(any batch size) and returns ``actions`` (B, H, A) in raw units; a report (parity, nodes, the
command) is written beside it as ``<out>.json``. Before anything is written, the
ONNX Runtime output is compared with PyTorch on ``--batches`` recorded batches: windows of the
demo dataset the checkpoint was trained on (its config.json's ``dataset``) unless ``--dataset``
is given. Above ``--tolerance`` nothing is written and the exit status is 2. Only deterministic
samplers export (a2a without noise, regression, mip). Load the result with
``a2a_temporal.export.load_onnx_policy(path, checkpoint=...)``, which verifies the weights
digest and, given the checkpoint, its hash. Needs ``pip install 'a2a_temporal[deploy]'``.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from a2a_temporal.cli import run_cli
from a2a_temporal.errors import ConfigError
from a2a_temporal.export import EXPORTERS, export_policy
from a2a_temporal.utils import versions, write_json_atomic


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="pretrained_model dir, a checkpoint step dir or a run dir")
    p.add_argument("--out", required=True, help="the .onnx file to write")
    p.add_argument("--num-inference-steps", "--steps", dest="num_inference_steps", type=int, default=1,
                   help="sampler steps baked into the graph (default 1)")
    p.add_argument("--method", default=None, choices=["euler", "midpoint", "heun"], help="flow solver (default euler)")
    p.add_argument("--dataset", default=None, help="demos for the parity batches (default: the checkpoint's)")
    p.add_argument("--batches", type=int, default=1000, help="recorded batches in the parity check")
    p.add_argument("--batch-size", type=int, default=1, help="windows per parity batch")
    p.add_argument("--tolerance", type=float, default=1e-4, help="largest max abs action difference allowed")
    p.add_argument("--exporter", default="auto", choices=list(EXPORTERS),
                   help="dynamo (leaner graph), torchscript (faster export) or auto (dynamo, then torchscript)")
    p.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads of the check")
    return p.parse_args(argv)


@run_cli
def main(argv=None) -> dict:
    a = parse(argv)
    for name in ("num_inference_steps", "batches", "batch_size", "threads"):
        if getattr(a, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(a, name)}")
    if not a.tolerance > 0:
        raise ConfigError(f"--tolerance must be > 0, got {a.tolerance}")
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    rep = export_policy(a.checkpoint, a.out, num_inference_steps=a.num_inference_steps, method=a.method,
                        dataset=a.dataset, batches=a.batches, batch_size=a.batch_size, tolerance=a.tolerance,
                        threads=a.threads, exporter=a.exporter)
    rep["wall_s"] = round(time.perf_counter() - t0, 1)
    rep["command"] = "python tools/export_policy.py " + shlex.join(sys.argv[1:] if argv is None else list(argv))
    report = Path(rep["out"]).with_suffix(".json")
    write_json_atomic(report, {**rep, "versions": versions()})
    print(f"parity: max abs action difference {rep['max_abs_diff']:.3g} (tolerance {a.tolerance:g}) over "
          f"{rep['batches']} batches ({rep['windows']} windows)")
    print(json.dumps({k: rep[k] for k in ("out", "exporter", "nodes", "bytes", "checkpoint_sha256", "wall_s")}))
    print(f"wrote {rep['out']} and {report}")
    return rep


if __name__ == "__main__":
    main()
