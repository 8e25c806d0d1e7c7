"""Convert demonstrations between ManiSkill trajectory files and LeRobot v3.0 dataset folders.

    python tools/convert_dataset.py --to lerobot data/PushCube-v1/.../x.h5 --out data/lerobot/push --fps 20
    python tools/convert_dataset.py --to maniskill data/lerobot/push --out data/push_back/x.h5

Arrays survive both directions unchanged (images go through H.264 video in a LeRobot folder).
Outputs are written atomically. A one-line JSON summary is printed and also written next to
the output as ``<out>.summary.json``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from a2a_temporal.cli import run_cli
from a2a_temporal.data.lerobot import read_lerobot, write_lerobot, write_maniskill_h5
from a2a_temporal.data.maniskill import read_demos


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", help="ManiSkill <name>.h5 (--to lerobot) or LeRobot v3.0 folder (--to maniskill)")
    p.add_argument("--to", required=True, choices=["lerobot", "maniskill"], help="output format")
    p.add_argument("--out", required=True, help="LeRobot folder (--to lerobot) or <name>.h5 (--to maniskill)")
    p.add_argument("--fps", type=float, default=20, help="frame rate written to the LeRobot folder")
    p.add_argument("--task", default=None, help="task description for the LeRobot folder (default: env id)")
    p.add_argument("--max-episodes", type=int, default=None)
    g = p.add_argument_group("reading a LeRobot folder (--to maniskill)")
    g.add_argument("--state-key", default="observation.state")
    g.add_argument("--action-key", default="action")
    g.add_argument("--image-key", default=None, help="video/image feature, e.g. observation.images.base_camera")
    g.add_argument("--qpos-key", default=None, help="feature holding the robot joint positions")
    g.add_argument("--qpos-dims", type=int, default=None, help="qpos = the first N state entries")
    return p.parse_args(argv)


@run_cli
def main(argv=None) -> dict:
    a = parse(argv)
    t0 = time.time()
    out = Path(a.out)
    if a.to == "lerobot":
        meta, episodes = read_demos(a.src, max_episodes=a.max_episodes)
        write_lerobot(meta, episodes, out, fps=a.fps, task=a.task)
    else:
        meta, episodes = read_lerobot(a.src, state_key=a.state_key, action_key=a.action_key, image_key=a.image_key,
                                      qpos_key=a.qpos_key, qpos_dims=a.qpos_dims, max_episodes=a.max_episodes)
        write_maniskill_h5(meta, episodes, out)
    summary = {"to": a.to, "src": str(a.src), "out": str(out), "episodes": len(episodes),
               "frames": int(sum(e.length for e in episodes)), "env_id": meta.env_id, "obs_mode": meta.obs_mode,
               "control_mode": meta.control_mode, "state_dim": meta.state_dim, "qpos_dim": meta.qpos_dim,
               "action_dim": meta.action_dim, "images": episodes[0].image is not None,
               "seconds": round(time.time() - t0, 2)}
    out.with_name(out.name + ".summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
