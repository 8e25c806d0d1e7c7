"""Demonstrations from ManiSkill's motion planner, converted to the requested control mode.

The planner acts in ``pd_joint_pos``; :func:`make_dataset` then replays each successful
episode into the requested observation and control modes (ManiSkill's replay tool, or, for demos
with mid-episode object displacements, :func:`convert_displaced`, which uses the same action
conversion and moves the object at the recorded step). The whole dataset directory is
written under a temporary name and renamed when complete, so an interrupted run never leaves
a half dataset where a good one was.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import subprocess
import sys
import time
from pathlib import Path

from ..data.maniskill import episode_seed
from ..errors import DataError
from ..pretrained import atomic_directory
from .maniskill import check_env_offline, import_maniskill, render_backend

RAW_NAME = "motionplanning"


class PlannerActionNoise:
    """Perturb the motion planner's executed arm targets so that demos visit states off the
    planned path and show the way back (recovery demos, after DART's noise injection).

    Wraps the recording environment: the solver calls ``step`` here, Gaussian noise is added to
    the arm's joint-position targets (radians; the gripper command is untouched) and the
    *noisy* action is what ManiSkill records, so the replay into other control modes reproduces
    the perturbed episode exactly. The noise is an AR(1) process, ``o_t = rho o_{t-1} +
    sqrt(1 - rho^2) sigma e_t`` (``rho = 0``: independent per step as in DART; larger rho: slower
    drifts that take the arm centimetres away), reset with each episode. The planner plans every
    segment from the robot's current joint positions, so later segments start from the disturbed
    state. Differs from DART: the labels are the executed (noisy) motions after conversion, not
    the supervisor's clean action at the visited state, so they contain the perturbation as well
    as the return to the path.
    """

    def __init__(self, env, sigma: float, rho: float = 0.0, arm_dims: int = 7, seed: int = 0):
        import numpy as np

        if sigma < 0 or not 0 <= rho < 1:
            raise DataError(f"action noise needs sigma >= 0 and 0 <= rho < 1, got sigma={sigma}, rho={rho}")
        self.env, self.sigma, self.rho, self.arm_dims = env, sigma, rho, arm_dims
        self.rng = np.random.default_rng(seed)
        self.offset = np.zeros(arm_dims)

    def reset(self, *args, **kwargs):
        self.offset[:] = 0.0
        return self.env.reset(*args, **kwargs)

    def step(self, action):
        import numpy as np

        action = np.array(action, dtype=np.float64, copy=True)
        e = self.rng.standard_normal(self.arm_dims)
        self.offset = self.rho * self.offset + np.sqrt(1.0 - self.rho ** 2) * self.sigma * e
        action[..., :self.arm_dims] += self.offset
        return self.env.step(action.astype(np.float32))

    def __getattr__(self, name):  # everything else (unwrapped, agent, flush_trajectory, ...) is the env's
        return getattr(self.env, name)


class Replan(Exception):
    """Raised from the planner's ``env.step`` right after an object displacement: the solution
    in progress aims at the old object pose, so it is abandoned and solved again from here."""


class PlannerDisplacement:
    """Move the task object mid-episode and let the motion planner solve again from the
    disturbed state (recovery demos for the ``displace`` robustness suite).

    Per attempt (:meth:`new_episode`) a generator seeded once draws whether this episode is
    displaced (probability ``prob``), the step ``k`` in ``step_range`` after which it happens, the
    distance (uniform in ``[distance_cm / 3, distance_cm]``) and the direction. After the ``k``-th
    executed action the object is moved with the suite's own rule
    (:func:`~a2a_temporal.envs.perturb.displace_object`: on the table, off other cubes, away
    from a low gripper; a grasped or lifted object waits until it rests) and :class:`Replan` is
    raised; the next ``reset`` the solver asks for is skipped, so the solution runs again from
    the current state and the recording goes on in the same episode. :attr:`event` holds what
    was moved, where and after which action, which :func:`convert_displaced` replays.
    """

    def __init__(self, env, env_id: str, distance_cm: float, prob: float = 1.0,
                 step_range: tuple[int, int] = (20, 60), seed: int = 0):
        import numpy as np

        from .perturb import TASKS

        if env_id not in TASKS:
            raise DataError(f"--displace: no displaceable object is known for {env_id}; "
                            f"tasks with one: {', '.join(sorted(TASKS))}")
        lo, hi = (int(x) for x in step_range)
        if distance_cm <= 0 or not 0 < prob <= 1 or not 1 <= lo <= hi:
            raise DataError(f"--displace needs a distance > 0 cm, 0 < probability <= 1 and 1 <= first step <= "
                            f"last step; got {distance_cm} cm, {prob}, steps {lo}..{hi}")
        self.env, self.spec, self.distance_cm, self.prob = env, TASKS[env_id], float(distance_cm), float(prob)
        self.step_range = (lo, hi)
        self.rng = np.random.default_rng(seed)
        self.event: dict | None = None
        self.new_episode()

    def new_episode(self) -> None:
        import math

        self.pending = bool(self.rng.random() < self.prob)
        self.k = int(self.rng.integers(self.step_range[0], self.step_range[1] + 1))
        self.distance_m = float(self.rng.uniform(self.distance_cm / 3.0, self.distance_cm)) / 100.0
        self.theta = float(self.rng.uniform(0.0, 2.0 * math.pi))
        self.t, self.event, self.hold_reset = 0, None, False

    def reset(self, *args, **kwargs):
        if self.hold_reset:  # the solver starts again after a displacement: the episode goes on
            return self.env.unwrapped.get_obs(), {}
        return self.env.reset(*args, **kwargs)

    def step(self, action):
        from .perturb import displace_object

        out = self.env.step(action)
        self.t += 1
        if self.pending and self.event is None and self.t >= self.k:
            moved = displace_object(self.env.unwrapped, self.spec, self.distance_m, self.theta)
            if moved is not None:
                self.event = {"step": self.t, "object": self.spec.obj, "distance_m": self.distance_m, **moved}
                self.hold_reset = True
                raise Replan
        return out

    def __getattr__(self, name):
        return getattr(self.env, name)


def planner_solutions() -> dict:
    import_maniskill()
    from mani_skill.examples.motionplanning.panda.run import MP_SOLUTIONS

    return MP_SOLUTIONS


def plan_demos(env_id: str, num_demos: int, out_dir: Path, seed: int = 0, image_size: int | None = None,
               progress: bool = True, max_tries_factor: float = 4.0, action_noise: float = 0.0,
               noise_rho: float = 0.0, displace_cm: float = 0.0, displace_prob: float = 1.0,
               displace_steps: tuple[int, int] = (20, 60)) -> dict:
    """Run the motion planner until ``num_demos`` episodes succeed; keep only those.

    Writes ``out_dir/motionplanning.{h5,json}`` (pd_joint_pos actions, env states). With
    ``action_noise > 0`` the executed arm targets are perturbed (:class:`PlannerActionNoise`); with
    ``displace_cm > 0`` the object is moved mid-episode and the planner solves again
    (:class:`PlannerDisplacement`), and the returned ``displacements`` map each kept episode's seed
    to its event (absent for the episodes left undisturbed).
    """
    check_env_offline(env_id)
    solutions = planner_solutions()
    if env_id not in solutions:
        raise DataError(f"ManiSkill has no motion-planning solution for {env_id}; "
                        f"planners exist for {sorted(solutions)}")
    import gymnasium as gym
    import numpy as np
    from mani_skill.utils.wrappers.record import RecordEpisode
    from tqdm.auto import tqdm

    kwargs = dict(obs_mode="none", control_mode="pd_joint_pos", render_mode=None,
                  sim_backend="physx_cpu", render_backend=render_backend())
    if image_size:
        kwargs["sensor_configs"] = dict(width=image_size, height=image_size)
    env = gym.make(env_id, **kwargs)
    env = RecordEpisode(env, output_dir=str(out_dir), trajectory_name=RAW_NAME, save_video=False,
                        source_type="motionplanning", source_desc="ManiSkill motion-planning solution",
                        record_reward=False, save_on_reset=False)
    recorder = env
    if action_noise > 0:
        env = PlannerActionNoise(recorder, action_noise, noise_rho, seed=seed)
    displacer = None
    if displace_cm > 0:
        env = displacer = PlannerDisplacement(env, env_id, displace_cm, displace_prob, displace_steps, seed=seed)
    displacements: dict[str, dict] = {}
    solve = solutions[env_id]
    ok, tries, lengths, t0 = 0, 0, [], time.perf_counter()
    max_tries = int(math.ceil(max_tries_factor * num_demos)) + 10
    bar = tqdm(total=num_demos, desc=f"plan {env_id}", disable=not progress, dynamic_ncols=True)
    try:
        while ok < num_demos:
            if tries >= max_tries:
                raise DataError(f"{env_id}: only {ok} of {tries} motion plans succeeded; "
                                f"giving up before {num_demos} demos")
            if displacer is not None:
                displacer.new_episode()
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    try:
                        res = solve(env, seed=seed + tries, debug=False, vis=False)
                    except Replan:  # the object moved: plan again from the disturbed state
                        res = solve(env, seed=seed + tries, debug=False, vis=False)
            except Exception:  # the planner raises on unreachable goals: a failed attempt
                res = -1
            tries += 1
            success = res != -1 and bool(np.asarray(res[-1]["success"]).item())
            if success:
                lengths.append(int(np.asarray(res[-1]["elapsed_steps"]).item()))
                recorder.flush_trajectory()
                if displacer is not None and displacer.event is not None:
                    displacements[str(seed + tries - 1)] = displacer.event
                ok += 1
                bar.update(1)
                bar.set_postfix(success_rate=f"{ok / tries:.2f}")
            else:
                recorder.flush_trajectory(save=False)
    finally:
        bar.close()
        recorder.close()
    return {"planned": ok, "attempts": tries, "planner_success_rate": ok / max(tries, 1),
            "mean_length": float(np.mean(lengths)) if lengths else 0.0,
            "plan_seconds": round(time.perf_counter() - t0, 2), "displacements": displacements}


def convert_demos(raw_h5: Path, obs_mode: str, control_mode: str, num_procs: int = 1) -> Path:
    """Replay ``raw_h5`` into ``obs_mode`` / ``control_mode`` with ManiSkill's replay tool."""
    import_maniskill()
    if num_procs > 1:
        # The replay pools its workers. Forked from this process, which has run the simulator and
        # holds its threads, they hang; ManiSkill's own command spawns them instead.
        cmd = [sys.executable, "-m", "mani_skill.trajectory.replay_trajectory", "--traj-path", str(raw_h5),
               "-o", obs_mode, "-c", control_mode, "--save-traj", "-b", "physx_cpu", "--num-envs", str(num_procs)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            tail = (r.stderr.strip().splitlines() or ["no message"])[-1]
            raise DataError(f"{raw_h5}: ManiSkill's replay with {num_procs} processes failed ({tail})")
    else:
        from mani_skill.trajectory import replay_trajectory as rt

        args = rt.Args(traj_path=str(raw_h5), obs_mode=obs_mode, target_control_mode=control_mode,
                       save_traj=True, sim_backend="physx_cpu", num_envs=1, verbose=False)
        with contextlib.redirect_stdout(io.StringIO()):
            rt.main(args)
    out = raw_h5.with_name(f"{raw_h5.stem}.{obs_mode}.{control_mode}.physx_cpu.h5")
    if not out.is_file():
        raise DataError(f"ManiSkill's replay did not write {out}")
    return out


def convert_displaced(raw_h5: Path, displacements: dict, obs_mode: str, control_mode: str,
                      progress: bool = False) -> Path:
    """Replay ``raw_h5`` (``pd_joint_pos``) into ``obs_mode`` / ``control_mode``, moving the object
    at each episode's recorded displacement.

    ManiSkill's replay tool cannot do this: it re-runs the recorded actions from the first state,
    so a move that was no action is lost. Here the original and the target environment step side
    by side through ManiSkill's own action conversion (``from_pd_joint_pos``), up to the recorded
    step; both objects are then shifted by the recorded vector and the conversion continues.
    Episodes that do not end in success are dropped, as the replay tool does. Writes
    ``<raw>.<obs_mode>.<control_mode>.physx_cpu.{h5,json}`` beside ``raw_h5``.
    """
    import gymnasium as gym
    import h5py
    import numpy as np

    import_maniskill()
    from mani_skill.trajectory.utils.actions import conversion
    from mani_skill.utils.wrappers.record import RecordEpisode
    from tqdm.auto import tqdm

    from .perturb import _set_xy, _xy

    raw_h5 = Path(raw_h5)
    meta = json.loads(raw_h5.with_suffix(".json").read_text())
    env_id, kwargs = meta["env_info"]["env_id"], dict(meta["env_info"]["env_kwargs"])
    ori_env = gym.make(env_id, **{**kwargs, "obs_mode": "none", "control_mode": "pd_joint_pos"})
    name = f"{raw_h5.stem}.{obs_mode}.{control_mode}.physx_cpu"
    env = RecordEpisode(gym.make(env_id, **{**kwargs, "obs_mode": obs_mode, "control_mode": control_mode}),
                        output_dir=str(raw_h5.parent), trajectory_name=name, save_video=False,
                        source_type="motionplanning", source_desc="ManiSkill motion-planning solution, object "
                        "displaced mid-episode and solved again", record_reward=False, save_on_reset=False)

    def play(actions):
        if control_mode == "pd_joint_pos":
            info = {}
            for a in actions:
                ori_env.step(a)
                info = env.step(a)[-1]
            return info
        return conversion.from_pd_joint_pos(control_mode, actions, ori_env, env)

    try:
        with h5py.File(raw_h5, "r") as f:
            for ep in tqdm(meta["episodes"], desc="convert (displaced)", disable=not progress):
                reset_kwargs = dict(ep["reset_kwargs"])
                env.reset(**reset_kwargs)
                ori_env.reset(**reset_kwargs)
                actions = f[f"traj_{ep['episode_id']}"]["actions"][:]
                event = displacements.get(str(episode_seed(ep)))
                with contextlib.redirect_stdout(io.StringIO()):
                    if event is None:
                        info = play(actions)
                    else:
                        k = int(event["step"])
                        play(actions[:k])
                        for e in (ori_env, env):
                            actor = getattr(e.unwrapped, event["object"])
                            _set_xy(actor, _xy(actor) + np.asarray(event["vector_xy"], dtype=np.float64))
                        info = play(actions[k:])
                if bool(np.asarray(info.get("success", False)).reshape(-1)[0]):
                    env.flush_trajectory()
                else:
                    env.flush_trajectory(save=False)
    finally:
        env.close()
        ori_env.close()
    out = raw_h5.with_name(f"{name}.h5")
    if not out.is_file():
        raise DataError(f"no episode of {raw_h5} converted to {control_mode}; {out} was not written")
    return out


def trim_episodes(h5_path: Path, keep: int) -> int:
    """Keep the first ``keep`` trajectories of a ManiSkill h5 (+ json); returns the count kept."""
    import h5py

    meta_path = h5_path.with_suffix(".json")
    meta = json.loads(meta_path.read_text())
    episodes = meta["episodes"]
    with h5py.File(h5_path, "a") as f:
        for ep in episodes[keep:]:
            key = f"traj_{ep['episode_id']}"
            if key in f:
                del f[key]
    meta["episodes"] = episodes[:keep]
    meta_path.write_text(json.dumps(meta, indent=2))
    return len(meta["episodes"])


def make_dataset(env_id: str, num_demos: int, obs_mode: str, control_mode: str, out: Path,
                 seed: int = 0, image_size: int | None = None, num_procs: int = 1,
                 progress: bool = True, action_noise: float = 0.0, noise_rho: float = 0.0,
                 displace_cm: float = 0.0, displace_prob: float = 1.0,
                 displace_steps: tuple[int, int] = (20, 60)) -> dict:
    """Plan, convert and write a complete dataset directory ``out`` (atomically)."""
    if num_demos < 1:
        raise DataError(f"--num-demos must be >= 1, got {num_demos}")
    out = Path(out)
    t0 = time.perf_counter()
    with atomic_directory(out) as tmp:
        # A margin: some episodes do not survive the control-mode conversion (perturbed ones more often:
        # the noise rotates the hand, which a position-only controller cannot replay).
        extra = max(2, int(math.ceil((0.25 if action_noise > 0 or displace_cm > 0 else 0.05) * num_demos)))
        stats = plan_demos(env_id, num_demos + extra, tmp, seed=seed, image_size=image_size, progress=progress,
                           action_noise=action_noise, noise_rho=noise_rho, displace_cm=displace_cm,
                           displace_prob=displace_prob, displace_steps=displace_steps)
        displacements = stats.pop("displacements")
        t1 = time.perf_counter()
        if progress:
            print(f"converting {stats['planned']} demos to obs_mode={obs_mode}, control_mode={control_mode} ...",
                  flush=True)
        if displace_cm > 0:
            converted = convert_displaced(tmp / f"{RAW_NAME}.h5", displacements, obs_mode, control_mode,
                                          progress=progress)
        else:
            converted = convert_demos(tmp / f"{RAW_NAME}.h5", obs_mode, control_mode, num_procs=num_procs)
        kept = trim_episodes(converted, num_demos)
        if kept < num_demos:
            raise DataError(f"{env_id}: only {kept} of {stats['planned']} demos converted to "
                            f"{control_mode}; tasks that need rotation (PegInsertionSide, LiftPegUpright) convert to "
                            "pd_joint_delta_pos or pd_ee_delta_pose")
        summary = {"env_id": env_id, "num_demos": kept, "obs_mode": obs_mode, "control_mode": control_mode,
                   "seed": seed, "image_size": image_size, "action_noise": action_noise, "noise_rho": noise_rho,
                   "displace_cm": displace_cm, "displace_prob": displace_prob if displace_cm > 0 else None,
                   "displace_steps": list(displace_steps) if displace_cm > 0 else None,
                   "dataset": converted.name, **stats,
                   "convert_seconds": round(time.perf_counter() - t1, 2),
                   "total_seconds": round(time.perf_counter() - t0, 2)}
        if displace_cm > 0:  # the events of the kept episodes, keyed by episode seed
            seeds = {str(episode_seed(e)) for e in json.loads(converted.with_suffix(".json").read_text())["episodes"]}
            summary["displacements"] = {k: v for k, v in displacements.items() if k in seeds}
            summary["displaced_demos"] = len(summary["displacements"])
        (tmp / "dataset.json").write_text(json.dumps(summary, indent=2))
    summary["path"] = str(out / summary["dataset"])
    return summary
