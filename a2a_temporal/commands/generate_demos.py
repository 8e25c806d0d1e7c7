"""Generate ManiSkill demonstrations with ManiSkill's motion planner, offline.

    python tools/generate_demos.py --env-id PushCube-v1 --num-demos 100 --obs-mode state \
        --control-mode pd_ee_delta_pos --out data/PushCube-v1/state

``--action-noise SIGMA [--noise-rho RHO]`` makes recovery demos: the planner's executed arm targets
are perturbed while it keeps solving from wherever the arm ends up. ``--displace CM`` moves the task
object mid-episode (the ``displace`` robustness suite's rule, a distance drawn from [CM/3, CM] cm,
after an action drawn from ``--displace-steps``, in a fraction ``--displace-prob`` of the episodes)
and the planner solves again from there; those episodes are converted by the toolkit's own replay,
which moves the object at the same step. Only successful episodes are kept; they are replayed by ManiSkill's replay tool into the
requested observation and control modes. The dataset directory is written atomically and
its ready-to-train h5 path is printed last. An environment that would need an asset download
fails at once.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from a2a_temporal.cli import run_cli
from a2a_temporal.envs.demos import make_dataset

CONTROL_MODES = ("pd_ee_delta_pos", "pd_ee_delta_pose", "pd_joint_delta_pos", "pd_joint_pos")


def parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--env-id", default="PushCube-v1")
    p.add_argument("--num-demos", type=int, default=100)
    p.add_argument("--obs-mode", default="state", choices=["state", "rgb"])
    p.add_argument("--control-mode", default="pd_ee_delta_pos", choices=CONTROL_MODES)
    p.add_argument("--out", default=None, help="dataset directory (default data/<env>/<obs>-<control>-<n>)")
    p.add_argument("--image-size", type=int, default=None, help="camera resolution for rgb (e.g. 64)")
    p.add_argument("--seed", type=int, default=0, help="first episode seed for the planner")
    p.add_argument("--num-procs", type=int, default=1, help="processes for the conversion replay")
    p.add_argument("--action-noise", type=float, default=0.0,
                   help="recovery demos: std (rad) of Gaussian noise on the planner's executed arm joint targets")
    p.add_argument("--noise-rho", type=float, default=0.0,
                   help="correlation of that noise from step to step (0: independent, as DART; 0.9: slow drifts)")
    p.add_argument("--displace", type=float, default=0.0, metavar="CM",
                   help="recovery demos: move the object by up to CM cm mid-episode and re-plan (0: off)")
    p.add_argument("--displace-prob", type=float, default=0.5,
                   help="fraction of the episodes that are displaced (the rest stay clean)")
    p.add_argument("--displace-steps", type=int, nargs=2, default=(20, 60), metavar=("FIRST", "LAST"),
                   help="the displacement follows an action drawn uniformly from FIRST..LAST")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


@run_cli
def main(argv=None) -> dict:
    a = parse(argv)
    noise = f"-noise{a.action_noise:g}" + (f"-rho{a.noise_rho:g}" if a.noise_rho else "") if a.action_noise else ""
    noise += f"-displace{a.displace:g}-p{a.displace_prob:g}" if a.displace else ""
    out = Path(a.out or f"data/{a.env_id}/{a.obs_mode}-{a.control_mode}-{a.num_demos}{noise}")
    summary = make_dataset(a.env_id, a.num_demos, a.obs_mode, a.control_mode, out, seed=a.seed,
                           image_size=a.image_size, num_procs=a.num_procs, progress=not a.quiet,
                           action_noise=a.action_noise, noise_rho=a.noise_rho, displace_cm=a.displace,
                           displace_prob=a.displace_prob, displace_steps=tuple(a.displace_steps))
    print(json.dumps({k: summary[k] for k in ("env_id", "num_demos", "obs_mode", "control_mode",
                                              "planner_success_rate", "displaced_demos", "total_seconds")
                      if k in summary}))
    print(summary["path"])
    return summary


if __name__ == "__main__":
    main()
