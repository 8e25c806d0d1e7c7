#!/usr/bin/env python
"""Does an rgb policy's image encoder know where the object is? A linear probe: the image features
of each checkpoint (what its condition MLP receives for one frame) are fitted by ridge regression to
the object's (x, y) on the table, on frames of the training demos, and scored on frames of demos
from other scenes. An encoder that locates the object gives a held-out error far below the spread
of the spawn positions; one that only tells scenes apart fits its training frames and not the rest.

    .venv/bin/python scripts/image_probe.py \
        --train-demos data/PickCube-v1/rgb-pd_ee_delta_pos-100/motionplanning.rgb.pd_ee_delta_pos.physx_cpu.h5 \
        --test-demos data/PickCube-v1/rgb-pd_ee_delta_pos-30-seed100000/motionplanning.rgb.pd_ee_delta_pos.physx_cpu.h5 \
        --checkpoint a2a+kp=runs/policy/pickcube_rgb/a2a+kp/seed0/checkpoints/best [--checkpoint ...] \
        [--untrained] [--supervised 2000] [--frames 10] [--actor cube] [--json runs/diag/pickcube_rgb_probe.json]

``--untrained`` adds, once per image architecture, the same net with fresh weights (torch seed 0):
what random features already give. ``--supervised N`` adds the first checkpoint's image encoder
trained from fresh weights for N iterations (batch 64, Adam 1e-3, the policies' random shift) to
regress the object's position directly on the training frames: what the architecture and these
frames allow when the position itself is the loss. Frames are the first ``--frames`` of every episode, where the
object still lies where it spawned. Errors are root-mean-square distances in cm; "spread" is the
error of predicting the training mean everywhere.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def probe_data(episodes, frames: int):
    """Images ``(N, H, W, 3)`` and the object's table position ``(N, 2)`` over the first ``frames``
    steps of every episode (episodes read with ``read_demos(..., aux_actor=...)``)."""
    import numpy as np

    images = np.concatenate([ep.image[:frames] for ep in episodes])
    xy = np.concatenate([ep.aux[:frames, :2] for ep in episodes]).astype(np.float64)
    return images, xy


def image_features(policy, images, batch: int = 256):
    """``(N, F)`` features of ``images`` (uint8 ``(N, H, W, 3)``): the image encoder and its projection."""
    import numpy as np
    import torch

    from a2a_temporal.heads.action.encoders import prepare_images

    enc = policy.obs_encoder
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            x = prepare_images(torch.from_numpy(images[i:i + batch]).unsqueeze(1))[:, 0]  # (n, 3, H, W)
            out.append(enc.image_proj(enc.image(x)).numpy())
    return np.concatenate(out).astype(np.float64)


def ridge_probe(f_train, y_train, f_test, y_test, lam: float = 1.0) -> dict:
    """Standardised features, closed-form ridge; RMSE (in the units of y x 100: m -> cm)."""
    import numpy as np

    mu, sd = f_train.mean(0), f_train.std(0) + 1e-8
    a, b = (f_train - mu) / sd, (f_test - mu) / sd
    a1, b1 = np.hstack([a, np.ones((len(a), 1))]), np.hstack([b, np.ones((len(b), 1))])
    w = np.linalg.solve(a1.T @ a1 + lam * np.eye(a1.shape[1]), a1.T @ y_train)

    def rmse(pred, y):
        return float(100 * np.sqrt(((pred - y) ** 2).sum(1).mean()))

    return {"train_cm": rmse(a1 @ w, y_train), "test_cm": rmse(b1 @ w, y_test),
            "spread_cm": rmse(np.broadcast_to(y_train.mean(0), y_test.shape), y_test)}


def train_supervised(config, images, y, iterations: int, batch: int = 64, seed: int = 0):
    """A fresh policy of ``config`` whose image encoder (+ projection + a linear head) is trained
    on ``images`` -> ``y`` (standardised) by MSE; returns the policy (for :func:`image_features`)."""
    import numpy as np
    import torch

    from a2a_temporal.heads.action import ActionFlowPolicy
    from a2a_temporal.heads.action.encoders import prepare_images

    torch.manual_seed(seed)
    policy = ActionFlowPolicy(config)
    enc = policy.obs_encoder
    head = torch.nn.Linear(enc.image_proj.out_features, y.shape[1])
    params = [*enc.image.parameters(), *enc.image_proj.parameters(), *head.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    mu, sd = y.mean(0), y.std(0)
    target = torch.from_numpy((y - mu) / sd).float()
    rng = np.random.default_rng(seed)
    enc.train()
    from tqdm import tqdm

    for _ in tqdm(range(iterations), desc="supervised", mininterval=5):
        idx = rng.integers(0, len(images), batch)
        x = prepare_images(torch.from_numpy(images[idx]).unsqueeze(1), shift=config.image_shift)[:, 0]
        loss = torch.nn.functional.mse_loss(head(enc.image_proj(enc.image(x))), target[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return policy.eval()


def main(argv=None) -> int:
    import numpy as np
    import torch

    from a2a_temporal.cli import parse_named_spec
    from a2a_temporal.data.maniskill import check_matches, read_demos
    from a2a_temporal.envs.evaluate import check_seeds
    from a2a_temporal.errors import A2AError
    from a2a_temporal.heads.action import ActionFlowPolicy
    from a2a_temporal.training.checkpoint import resolve_pretrained
    from a2a_temporal.utils import write_json_atomic

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--train-demos", required=True, help="rgb demo .h5 the policies trained on (the probe's fit)")
    p.add_argument("--test-demos", required=True, help="rgb demo .h5 of other scenes (the probe's score)")
    p.add_argument("--checkpoint", action="append", required=True, help="NAME=CHECKPOINT (repeatable)")
    p.add_argument("--untrained", action="store_true", help="add each architecture with fresh weights")
    p.add_argument("--supervised", type=int, default=0, metavar="N",
                   help="add the first checkpoint's encoder trained on the position itself for N iterations")
    p.add_argument("--frames", type=int, default=10, help="first frames of every episode")
    p.add_argument("--actor", default="cube", help="env_states/actors/<ACTOR> whose position is probed")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--json", default="runs/diag/image_probe.json")
    a = p.parse_args(argv)
    if a.frames < 1 or a.supervised < 0:
        p.error(f"--frames {a.frames} / --supervised {a.supervised}: expected a positive / non-negative integer")
    torch.set_num_threads(max(1, a.threads))
    try:
        meta_tr, ep_tr = read_demos(a.train_demos, aux_actor=a.actor)
        meta_te, ep_te = read_demos(a.test_demos, aux_actor=a.actor)
        if meta_tr.obs_mode != "rgb" or meta_te.obs_mode != "rgb":
            raise A2AError(f"{a.train_demos if meta_tr.obs_mode != 'rgb' else a.test_demos}: "
                           "the probe needs rgb demos (tools/generate_demos.py --obs-mode rgb)")
        overlap = sorted(set(meta_tr.episode_seeds) & set(meta_te.episode_seeds))
        if overlap:
            raise A2AError(f"{a.test_demos}: episode seed {overlap[0]} is also in {a.train_demos}; "
                           "test scenes must be new (tools/generate_demos.py --seed 100000)")
        (x_tr, y_tr), (x_te, y_te) = probe_data(ep_tr, a.frames), probe_data(ep_te, a.frames)
        rows, seen = {}, set()
        for spec in a.checkpoint:
            name, path, _ = parse_named_spec(spec, "--checkpoint", with_steps=False)
            policy = ActionFlowPolicy.from_pretrained(resolve_pretrained(path)).eval()
            check_matches(meta_tr, policy.config.env_id, policy.config.control_mode, policy.config.obs_mode)
            check_seeds(policy, meta_te.episode_seeds, False)
            models = [(name, policy)]
            c = policy.config
            arch = (c.image_encoder, c.image_pool, c.image_keypoints, c.image_output_stride, c.image_features)
            if a.untrained and arch not in seen:  # one fresh-weights row per image architecture
                seen.add(arch)
                torch.manual_seed(0)
                models.append((f"{name} (untrained)", ActionFlowPolicy(policy.config).eval()))
            for label, model in models:
                r = ridge_probe(image_features(model, x_tr), y_tr, image_features(model, x_te), y_te)
                rows[label] = {"checkpoint": path, "trained": model is policy,
                               "image_pool": policy.config.image_pool, **r}
                print(f"{label:32s} train {r['train_cm']:.2f} cm  test {r['test_cm']:.2f} cm  "
                      f"(spread {r['spread_cm']:.2f} cm)")
        if a.supervised:
            import time

            first = next(iter(rows.values()))
            config = ActionFlowPolicy.from_pretrained(resolve_pretrained(first["checkpoint"])).config
            cpu = time.process_time()
            model = train_supervised(config, x_tr, y_tr, a.supervised)
            cpu = time.process_time() - cpu
            r = ridge_probe(image_features(model, x_tr), y_tr, image_features(model, x_te), y_te)
            label = f"supervised {a.supervised} it."
            rows[label] = {"checkpoint": None, "trained": True, "image_pool": config.image_pool,
                           "iterations": a.supervised, "train_cpu_s": round(cpu, 1), **r}
            print(f"{label:32s} train {r['train_cm']:.2f} cm  test {r['test_cm']:.2f} cm  "
                  f"(spread {r['spread_cm']:.2f} cm; {cpu / 60:.1f} CPU-min)")
    except (A2AError, OSError) as e:  # config, data and checkpoint errors name the file or key
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_json_atomic(a.json, {"train_demos": a.train_demos, "test_demos": a.test_demos, "frames": a.frames,
                               "actor": a.actor, "train_frames": len(x_tr), "test_frames": len(x_te),
                               "rows": rows, "command": " ".join(["python", "scripts/image_probe.py"]
                                                                  + (argv if argv is not None else sys.argv[1:]))})
    print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
