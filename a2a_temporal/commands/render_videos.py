"""Turn ManiSkill demo episodes into mp4 videos (and keep each episode's actions beside it).

    python tools/render_videos.py --demos data/PickCube-v1/state-pd_ee_delta_pos-100/<file>.h5 \
        --out data/videos/pickcube64/set0 [--size 64|128] [--max-episodes N]

Saved env states are restored into an rgb environment and rendered: no physics is simulated.
Writes ``episode_<k>.mp4`` and ``episode_<k>.actions.npy`` (T actions for T+1 frames) per episode.
"""
from __future__ import annotations

import argparse
import json

from a2a_temporal.cli import run_cli
from a2a_temporal.envs.render import render_episodes


@run_cli
def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--demos", required=True, help="ManiSkill trajectory .h5 with env_states (+ its .json)")
    p.add_argument("--out", required=True, help="output folder for the videos")
    p.add_argument("--size", type=int, default=64, choices=[64, 128])
    p.add_argument("--max-episodes", type=int, default=None)
    p.add_argument("--fps", type=int, default=20)
    p.add_argument("--quiet", action="store_true")
    a = p.parse_args(argv)
    s = render_episodes(a.demos, a.out, image_size=a.size, max_episodes=a.max_episodes, fps=a.fps,
                        progress=not a.quiet)
    print(json.dumps(s))
    return s


if __name__ == "__main__":
    main()
