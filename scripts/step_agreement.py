#!/usr/bin/env python
"""How much a policy's action chunk changes with the number of sampler steps, on the same states:
for each checkpoint, the chunks at every ``--steps`` count for the same demo windows, the mean
absolute difference of each from the first count's chunk, and each one's mean absolute error to the
demo's own next chunk (padding past an episode's end left out), in raw action units.

    .venv/bin/python scripts/step_agreement.py \
        --demos data/StackCube-v1/state-pd_ee_delta_pos-20-seed100000/motionplanning.state.pd_ee_delta_pos.physx_cpu.h5 \
        --checkpoint a2a=runs/policy/stackcube/a2a_k1_nocons+steps/seed0/checkpoints/best [--checkpoint ...] \
        [--steps 1 10] [--windows 512] [--json runs/diag/step_agreement.json]

Use demos the policies never trained on (``tools/generate_demos.py --seed 100000`` gives scenes
outside the training demos, the validation seeds and the test seeds): a demo whose seed is one of a
policy's training-demo seeds is refused as in the evaluator (``--allow-demo-seeds`` to measure on
them deliberately). torch is seeded the same before every step count, so a policy that starts from
noise draws the same noise at each count and its rows differ by the step count alone.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def chunk_agreement(policy, batch: dict, steps: list[int], seed: int = 0) -> dict:
    """``{steps: {"vs_first": mean |chunk - chunk at steps[0]|, "error": mean |chunk - target|}}``
    over the valid (non-padded) actions of ``batch`` (a :class:`PolicyWindows` batch)."""
    import torch

    valid = (~batch["action_is_pad"]).unsqueeze(-1).float()  # (B, H, 1)
    n = valid.sum() * batch["action"].shape[-1]
    chunks = {}
    for k in steps:
        torch.manual_seed(seed)
        chunks[k] = policy.predict_action_chunk(batch, num_inference_steps=k)
    first = chunks[steps[0]]
    return {k: {"vs_first": float(((c - first).abs() * valid).sum() / n),
                "error": float(((c - batch["action"]).abs() * valid).sum() / n)} for k, c in chunks.items()}


def main(argv=None) -> int:
    import numpy as np

    from a2a_temporal.cli import parse_named_spec
    from a2a_temporal.data.maniskill import check_matches, read_demos
    from a2a_temporal.envs.evaluate import check_seeds
    from a2a_temporal.errors import A2AError
    from a2a_temporal.heads.action import ActionFlowPolicy
    from a2a_temporal.policy_setup import make_windows
    from a2a_temporal.training.checkpoint import resolve_pretrained
    from a2a_temporal.utils import write_json_atomic

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--demos", required=True, help="ManiSkill demo .h5 the policies did not train on")
    p.add_argument("--checkpoint", action="append", required=True, help="NAME=CHECKPOINT (repeatable)")
    p.add_argument("--steps", type=int, nargs="+", default=[1, 10])
    p.add_argument("--windows", type=int, default=512, help="demo windows, evenly spaced over the file")
    p.add_argument("--json", default="runs/diag/step_agreement.json")
    p.add_argument("--allow-demo-seeds", action="store_true", help="measure on a policy's own training scenes")
    a = p.parse_args(argv)
    if any(k < 1 for k in a.steps) or a.windows < 1:
        p.error(f"--steps {a.steps} / --windows {a.windows}: expected positive integers")
    try:
        meta, episodes = read_demos(a.demos, load_images=False)
        rows = {}
        for spec in a.checkpoint:
            name, path, _ = parse_named_spec(spec, "--checkpoint", with_steps=False)
            policy = ActionFlowPolicy.from_pretrained(resolve_pretrained(path)).eval()
            check_matches(meta, policy.config.env_id, policy.config.control_mode, policy.config.obs_mode)
            check_seeds(policy, meta.episode_seeds, a.allow_demo_seeds)
            data = make_windows(episodes, policy.config)
            idx = np.linspace(0, len(data) - 1, min(a.windows, len(data))).round().astype(int)
            batch = data.__getitems__(idx)
            rows[name] = {"checkpoint": path, "windows": len(idx),
                          "steps": {str(k): v for k, v in chunk_agreement(policy, batch, a.steps).items()}}
    except (A2AError, OSError) as e:  # config, data and checkpoint errors name the file or key
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"| checkpoint | steps | mean abs. change from {a.steps[0]} step(s) | mean abs. error to the demo chunk |")
    print("|---|---|---|---|")
    for name, r in rows.items():
        for k, v in r["steps"].items():
            print(f"| {name} | {k} | {v['vs_first']:.4f} | {v['error']:.4f} |")
    write_json_atomic(a.json, {"demos": a.demos, "steps": a.steps, "results": rows,
                               "command": " ".join(["python", "scripts/step_agreement.py"]
                                                   + (argv if argv is not None else sys.argv[1:]))})
    print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
