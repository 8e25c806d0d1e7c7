#!/usr/bin/env python
"""Seconds per VAE training iteration (forward, backward, AdamW step) for a few variants, timed
in one run so that they share the machine's state:

    .venv/bin/python scripts/vae_speed.py [--threads 2] [--batch 32] [--size 64] [--iters 6]
        [--json runs/benchmark/vae_speed.json]

Variants: the shipped 64 px VAE (blocks 32-64-64) in PyTorch's default NCHW layout, the same with
channels-last (NHWC) weights, the same under bf16 autocast (what ``--train.mixed_precision=bf16``
does through accelerate: fp32 weights and optimizer, bf16 convolutions), and a narrower second
block (32-32-64, the decoder's 64 px stages at 32 channels), in fp32 and bf16. Random frames: the
cost does not depend on the content.
Each round times ``--iters`` iterations per variant after one warm-up (median); rounds are
interleaved and the median round is reported, wall and process CPU time.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from a2a_temporal.heads.video import VAEConfig, VideoVAE  # noqa: E402
from a2a_temporal.utils import write_json_atomic  # noqa: E402


def time_variant(vae: VideoVAE, frames: torch.Tensor, iters: int, bf16: bool = False) -> dict:
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-4)
    wall, cpu = [], []
    for i in range(iters + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, _ = vae({"frames": frames})
        opt.zero_grad()
        loss.backward()
        opt.step()
        if i:  # the first iteration warms up
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return {"s_per_it": sorted(wall)[len(wall) // 2], "cpu_s_per_it": sorted(cpu)[len(cpu) // 2]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--iters", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", default="runs/benchmark/vae_speed.json")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    frames = torch.randint(0, 256, (a.batch, a.size, a.size, 3), dtype=torch.uint8)
    base = dict(image_size=a.size, latent_channels=4, block_out_channels=(32, 64, 64))
    narrow = {**base, "block_out_channels": (32, 32, 64)}
    variants = {  # name: (VAE config, channels-last, bf16 autocast)
        "default (NCHW)": (base, False, False),
        "channels_last": (base, True, False),
        "bf16 autocast": (base, False, True),
        "blocks 32-32-64": (narrow, False, False),
        "blocks 32-32-64, bf16 autocast": (narrow, False, True),
    }
    models = {}
    for name, (cfg, cl, _) in variants.items():
        vae = VideoVAE(VAEConfig(**cfg))
        models[name] = vae.to(memory_format=torch.channels_last) if cl else vae
    samples: dict[str, list[dict]] = {name: [] for name in variants}
    for rnd in range(a.rounds):  # interleaved rounds: a drift of the machine hits every variant alike
        for name, vae in models.items():
            samples[name].append(time_variant(vae, frames, a.iters, bf16=variants[name][2]))
            print(f"round {rnd}: {name:>32}: {samples[name][-1]['s_per_it']:.3f} s / it", flush=True)
    rows = {}
    for name, ss in samples.items():
        med = lambda key: sorted(x[key] for x in ss)[len(ss) // 2]  # noqa: E731
        rows[name] = {"s_per_it": med("s_per_it"), "cpu_s_per_it": med("cpu_s_per_it"),
                      "rounds": [x["s_per_it"] for x in ss], "parameters": sum(q.numel() for q in models[name].parameters())}
        print(f"{name:>32}: {rows[name]['s_per_it']:.3f} s / it (median of {a.rounds} rounds), "
              f"CPU {rows[name]['cpu_s_per_it']:.3f} s / it", flush=True)
    first = next(iter(rows.values()))["s_per_it"]
    for r in rows.values():
        r["speedup"] = first / r["s_per_it"]
    out = {"rows": rows, "threads": a.threads, "batch": a.batch, "size": a.size, "iters": a.iters, "rounds": a.rounds,
           "command": " ".join(["python", "scripts/vae_speed.py", *(sys.argv[1:] if argv is None else argv)])}
    write_json_atomic(a.json, out)
    print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
