"""Fixed, seeded robustness suites applied inside each evaluation environment.

A *suite* perturbs one thing (the initial state, the object, the observation, the action, the
timing or the image) at a few fixed *levels*; the nominal level (1.0 for ``spawn`` and ``size``,
0 for the others) leaves the environment exactly as it is. :class:`PerturbWrapper` applies a suite to one ManiSkill environment (wrapping
ManiSkill's ``CPUGymWrapper``: numpy, unbatched observations); :func:`make_perturbed_env` is the
picklable factory that the evaluator hands to ``gymnasium.vector.AsyncVectorEnv`` through
``functools.partial``, so the perturbation lives in the environment's own process.

Determinism: every random draw of a suite comes from a NumPy generator seeded by
``(suite, level, episode seed)`` (:func:`episode_rng`; never a global RNG), and the simulator's
own initial state is a function of the episode seed, so two runs of a suite, level and seed see
identical perturbations and identical initial states, in any episode order and any number of
parallel environments. Each episode's perturbation (what was applied, where and when) is kept in
:meth:`PerturbWrapper.perturbation_record`, which the evaluator stores per episode.

Suites and levels (``d`` = distance, ``H`` = evaluation horizon in control steps)
===============================================================================

================  ==================  ==========================================================
suite             levels              what a level does
================  ==================  ==========================================================
``spawn``         1.0, 1.5, 2.0       after ManiSkill's reset, every spawned object's xy offset
                                      from the spawn centre (and the goal, see below) is
                                      multiplied by the level (``actor.set_pose``): at 2.0 an
                                      object sampled at offset (0.05, -0.08) starts at
                                      (0.10, -0.16). Height and orientation are kept.
``size``          0.8, 1.0, 1.2       the cube is rebuilt with ``cube_half_size`` x level (one
                                      ManiSkill reconfigure at the first reset; ``_load_scene``,
                                      ``_initialize_episode`` and ``evaluate`` read the attribute,
                                      so the spawn height and the success check follow).
``displace``      0, 2, 4, 6 (cm)     at step ``k`` drawn uniformly from
                                      ``[round(0.2 H), round(0.6 H)]`` (20-60 for H = 100; ``H``
                                      is the task's standard horizon even when the episode is
                                      run longer, see :func:`placement_horizon`) the
                                      object is moved sideways by ``d`` cm in a direction drawn
                                      uniformly from the circle (``set_pose``, velocity kept).
                                      The observation returned by step ``k`` already shows the
                                      moved object (that step's ``info`` still describes the
                                      state just before the push). A direction is refused, and the next of 8
                                      directions 45 deg apart tried, when it would leave the table
                                      (3 cm margin), overlap another cube, or land within 5 cm of
                                      the gripper (TCP below 10 cm). Grasped or lifted objects
                                      (PickCube, StackCube) are displaced at the first step
                                      ``>= k`` at which they rest on the table and are not
                                      grasped; if that never happens the record says so
                                      (``applied_step: null``).
``action_noise``  0, 0.05, 0.1, 0.2   executed action = clip(a + N(0, (level (high - low))^2),
                                      low, high) per dimension, a fresh draw every step (for the
                                      normalised [-1, 1] controllers: std 0.1, 0.2, 0.4).
``obs_noise``     0, 0.005, 0.01,     Gaussian noise of std ``level`` in the raw units of each
                  0.02                entry (m, rad, m/s, ...) added to every entry of the flat
                                      state vector given to the policy (state mode), or to every
                                      float leaf of ``agent`` / ``extra`` (rgb mode; images are
                                      not noised). A fresh draw every step; the simulator's state
                                      is not changed.
``delay``         0, 1, 2 (steps)     the policy receives the observation from ``level`` control
                                      steps earlier (the first observation repeated at the start
                                      of an episode); actions act at once.
``visual``        0, 1, 2, 3          rgb policies only, see the table below.
================  ==================  ==========================================================

Per task (``spawn``, ``size``, ``displace`` need a task entry; the other suites work for any task):

===============  ==================  ========================  =====================  ========
task             object (displaced)  nominal spawn region      goal under ``spawn``   ``size``
===============  ==================  ========================  =====================  ========
PushCube-v1      ``obj``             xy in [-0.1, 0.1]^2       goal region keeps its  yes
                                                               fixed offset (+0.2, 0)
                                                               from the moved cube
PullCube-v1      ``obj``             xy in [-0.1, 0.1]^2       fixed offset (-0.2, 0) yes
                                                               kept
PickCube-v1      ``cube``            xy in [-0.1, 0.1]^2       goal xy (own random    yes
                                                               draw in the same
                                                               region) scaled too;
                                                               goal height kept
StackCube-v1     ``cubeA`` (red)     x in [-0.2, 0.2],         no goal: both cubes    no
                                     y in [-0.3, 0.3]          scaled (cube distances
                                     (both cubes)              grow, so they stay
                                                               apart)
===============  ==================  ========================  =====================  ========

``size`` is refused for StackCube-v1: its ``_load_scene`` hard-codes the 0.02 m half size of
both cubes and sets ``cube_half_size`` (read by the success check) itself, so no attribute
rebuilds the cubes. Success is always ManiSkill's own ``evaluate()``, which reads the moved goal
actor (``goal_region`` / ``goal_site``) and the resized cube's attribute.

``visual`` levels (each drawn per episode from the seeded generator; fixed severity, random
direction):

=====  ==========================  ============  ======================  ================  ============
level  light intensity (all         light tilt    table / floor           sensor cameras    distractors
       directional + ambient)
=====  ==========================  ============  ======================  ================  ============
0      nominal                     --            nominal                 nominal           --
1      x (1 +- 0.25)               10 deg        nominal                 nominal           --
2      x (1 +- 0.45)               20 deg        table: flat random      moved 2 cm,       --
                                                 colour (texture off)    turned 3 deg
3      x (1 +- 0.6)                30 deg        table and floor: flat   moved 4 cm,       3 visual-only
                                                 random colours          turned 6 deg      objects
=====  ==========================  ============  ======================  ================  ============

The sign of the intensity change, the tilt and turn axes (random horizontal axis for lights,
random 3-D axis for cameras), the camera's shift direction and the colours are the per-episode
draws. Distractors are kinematic, collision-free primitives (a 2 cm cube, a 2 cm sphere, a
1.5 cm cube) in random colours, placed on the table in x in [-0.25, 0.3], y in [-0.3, 0.3] at
least 8 cm from every task object and goal: they change only what the camera sees, never the
physics. They are built into the scene once (after the first reset) and so also appear in
``env.get_state()``. Not done: textures other than flat colours, camera intrinsics, shadows.
A state policy asking for ``visual`` gets a one-line error.
"""
from __future__ import annotations

import math
import zlib
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

# ----------------------------------------------------------------------------- specifications

SUITES: dict[str, tuple] = {
    "spawn": (1.0, 1.5, 2.0),
    "size": (0.8, 1.0, 1.2),
    "displace": (0, 2, 4, 6),
    "action_noise": (0, 0.05, 0.1, 0.2),
    "obs_noise": (0, 0.005, 0.01, 0.02),
    "delay": (0, 1, 2),
    "visual": (0, 1, 2, 3),
}
NOMINAL = {"spawn": 1.0, "size": 1.0, "displace": 0, "action_noise": 0, "obs_noise": 0, "delay": 0, "visual": 0}
UNITS = {"spawn": "spawn offset scale", "size": "cube size scale", "displace": "displacement (cm)",
         "action_noise": "action noise std (fraction of range)", "obs_noise": "observation noise std (raw units)",
         "delay": "observation delay (steps)", "visual": "visual level"}

# Table top (TableSceneBuilder's collision box, x centred at -0.12): where a cube may be put.
TABLE_X, TABLE_Y, TABLE_MARGIN = (-0.7245, 0.4845), (-1.209, 1.209), 0.03
DISPLACE_STEP_RANGE = (0.2, 0.6)  # fraction of the horizon


@dataclass(frozen=True)
class TaskSpec:
    """Where a task's objects are and how ``spawn`` / ``size`` / ``displace`` treat them."""

    obj: str                              # attribute of the manipulated (displaced) actor
    others: tuple[str, ...] = ()          # further actors spawned in the region (scaled by spawn)
    goal: str | None = None               # goal actor attribute
    goal_mode: str | None = None          # "offset": keeps its offset to obj; "region": own xy scaled
    region: tuple[tuple[float, float], tuple[float, float]] = ((-0.1, 0.1), (-0.1, 0.1))  # nominal xy
    resizable: bool = True                # _load_scene builds the cube from ``cube_half_size``
    can_lift: bool = False                # the object may be grasped / lifted (displace waits)


TASKS: dict[str, TaskSpec] = {
    "PushCube-v1": TaskSpec("obj", goal="goal_region", goal_mode="offset"),
    "PullCube-v1": TaskSpec("obj", goal="goal_region", goal_mode="offset"),
    "PickCube-v1": TaskSpec("cube", goal="goal_site", goal_mode="region", can_lift=True),
    "StackCube-v1": TaskSpec("cubeA", others=("cubeB",), region=((-0.2, 0.2), (-0.3, 0.3)), resizable=False,
                             can_lift=True),
}
TASK_SUITES = ("spawn", "size", "displace")


@dataclass(frozen=True)
class VisualLevel:
    light: float        # intensity factor 1 +- light
    tilt_deg: float     # directional lights turned by this angle
    table: bool         # flat random table colour
    floor: bool         # flat random floor colour
    cam_shift: float    # metres
    cam_turn_deg: float
    distractors: int


VISUAL_LEVELS = {
    0: VisualLevel(0.0, 0.0, False, False, 0.0, 0.0, 0),
    1: VisualLevel(0.25, 10.0, False, False, 0.0, 0.0, 0),
    2: VisualLevel(0.45, 20.0, True, False, 0.02, 3.0, 0),
    3: VisualLevel(0.6, 30.0, True, True, 0.04, 6.0, 3),
}
DISTRACTORS = (("cube", 0.02), ("sphere", 0.02), ("cube", 0.015))  # shape, half size / radius (m)
DISTRACTOR_REGION = ((-0.25, 0.3), (-0.3, 0.3))
DISTRACTOR_CLEARANCE = 0.08


def _fmt(levels) -> str:
    return ", ".join(f"{v:g}" for v in levels)


def check_suite(suite: str, level, env_id: str | None = None, obs_mode: str | None = None) -> tuple[str, float | int]:
    """Validate ``suite`` / ``level`` (and the task / observation mode it is applied to).

    Returns ``(suite, level)`` with the level as the specification spells it (``2`` not ``2.0``
    for ``displace``). Every problem is a one-line :class:`ConfigError` naming what was expected.
    """
    if suite not in SUITES:
        raise ConfigError(f"unknown robustness suite {suite!r}; valid suites: {', '.join(SUITES)}")
    if level is None:
        raise ConfigError(f"suite {suite!r} needs a level; valid levels: {_fmt(SUITES[suite])}")
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise ConfigError(f"suite {suite!r}: level {level!r} is not a number; valid levels: "
                          f"{_fmt(SUITES[suite])}") from None
    match = [v for v in SUITES[suite] if math.isclose(value, v, rel_tol=1e-9, abs_tol=1e-12)]
    if not match:
        raise ConfigError(f"suite {suite!r} has no level {value:g}; valid levels: {_fmt(SUITES[suite])}")
    if env_id is not None and suite in TASK_SUITES:
        task = TASKS.get(env_id)
        if task is None:
            raise ConfigError(f"suite {suite!r} has no specification for {env_id}; tasks with one: "
                              f"{', '.join(TASKS)}")
        if suite == "size" and not task.resizable:
            ok = [k for k, t in TASKS.items() if t.resizable]
            raise ConfigError(f"suite 'size' is not supported for {env_id} (its _load_scene hard-codes the cube "
                              f"half size); supported tasks: {', '.join(ok)}")
    if suite == "visual" and obs_mode is not None and not str(obs_mode).startswith("rgb"):
        raise ConfigError(f"suite 'visual' perturbs camera images and needs an rgb policy (obs_mode=rgb), "
                          f"got obs_mode={obs_mode!r}")
    return suite, match[0]


def describe(suite: str, level, env_id: str | None = None) -> str:
    """One line saying what ``suite`` at ``level`` does (for the JSON results)."""
    suite, level = check_suite(suite, level)
    task = TASKS.get(env_id) if env_id else None
    if suite == "spawn":
        what = f"object{'s' if task and task.others else ''}" + (" and goal" if task and task.goal else "")
        return f"{what} spawn xy offsets x{level:g} (set_pose after reset)"
    if suite == "size":
        return f"cube half size x{level:g} (cube_half_size, one reconfigure)"
    if suite == "displace":
        lo, hi = DISPLACE_STEP_RANGE
        return f"object moved {level:g} cm sideways at a seeded step in [{lo:g} H, {hi:g} H], seeded direction"
    if suite == "action_noise":
        return f"executed action + N(0, ({level:g} x action range)^2), clipped to the action space"
    if suite == "obs_noise":
        return f"state observation + N(0, {level:g}^2) in raw units"
    if suite == "delay":
        return f"policy sees the observation from {level} control steps earlier"
    v = VISUAL_LEVELS[level]
    return (f"lights x(1+-{v.light:g}), tilted {v.tilt_deg:g} deg; table colour {'random' if v.table else 'nominal'}; "
            f"floor colour {'random' if v.floor else 'nominal'}; cameras {v.cam_shift * 100:g} cm / "
            f"{v.cam_turn_deg:g} deg; {v.distractors} distractors")


def episode_rng(suite: str, level, seed: int) -> np.random.Generator:
    """The generator of one episode's perturbation: a function of (suite, level, seed) only."""
    code = int(round(float(level) * 1_000_000))
    return np.random.default_rng(np.random.SeedSequence([zlib.crc32(suite.encode()), code, int(seed) & (2**63 - 1)]))


# ----------------------------------------------------------------------------- the wrapper

try:
    from gymnasium import Wrapper as _Wrapper
except ImportError:  # without the simulator extra the specifications stay importable
    _Wrapper = object


class PerturbWrapper(_Wrapper):
    """Apply one suite at one level to a ManiSkill env wrapped in ``CPUGymWrapper``.

    Observations stay what ``CPUGymWrapper`` gives: ``(Ds,)`` float32 in state mode, a dict with
    ``agent``, ``extra``, ``sensor_data/<cam>/rgb (H, W, 3) uint8`` ... in rgb mode. Actions are
    ``(A,)``. ``last_executed_action`` is the action the simulator really received last step.
    """

    def __init__(self, env, suite: str, level, env_id: str, obs_mode: str = "state", horizon: int = 100):
        super().__init__(env)
        self.suite, self.level = check_suite(suite, level, env_id, obs_mode)
        self.env_id, self.obs_mode, self.horizon = env_id, obs_mode, int(horizon)
        self.task = TASKS.get(env_id)
        self.value = float(self.level)
        self.active = not math.isclose(self.value, float(NOMINAL[self.suite]))
        self.rng: np.random.Generator | None = None
        self.t = 0
        self.last_executed_action: np.ndarray | None = None
        self._record: dict = {}
        self._history: deque | None = None
        self._pending_reconfigure = False
        self._visual_scene = None
        base = self.env.unwrapped
        self.nominal_half_size = _half_size(base) if self.task else None
        if self.suite == "size" and self.active:
            base.cube_half_size = self.nominal_half_size * self.value  # read by _load_scene at the reconfigure
            self._pending_reconfigure = True
        if self.suite == "action_noise":
            low, high = np.asarray(self.action_space.low, np.float64), np.asarray(self.action_space.high, np.float64)
            if not (np.isfinite(low).all() and np.isfinite(high).all()):
                raise ConfigError(f"suite 'action_noise' needs a bounded action space; {env_id} has bounds "
                                  f"{low.tolist()}..{high.tolist()}")
            self._low, self._high = low, high
            self.action_std = self.value * (high - low)

    # -- gymnasium API

    def reset(self, *, seed=None, options=None):
        if self._pending_reconfigure:
            options = {**(options or {}), "reconfigure": True}
            self._pending_reconfigure = False
        obs, info = self.env.reset(seed=seed, options=options)
        base = self.env.unwrapped
        if seed is None:
            seed = base._episode_seed[0]
        elif np.iterable(seed):
            seed = list(seed)[0]
        seed = int(seed)
        self.rng = episode_rng(self.suite, self.level, seed)
        self.t = 0
        self.last_executed_action = None
        self._record = {"suite": self.suite, "level": self.level, "seed": seed}
        changed = getattr(self, f"_reset_{self.suite}")(base)
        if changed:
            obs = self._observe()
        obs = self._to_policy(obs)
        return obs, info

    def step(self, action):
        action = np.asarray(action, dtype=np.float32)
        if self.suite == "action_noise" and self.active:
            noise = self.rng.normal(size=action.shape) * self.action_std
            executed = np.clip(action.astype(np.float64) + noise, self._low, self._high).astype(np.float32)
            r = self._record
            r["steps"] += 1
            r["sum_abs_noise"] += float(np.abs(noise).mean())
            r["clipped"] += int(((action + noise) < self._low).sum() + ((action + noise) > self._high).sum())
            action = executed
        self.last_executed_action = action
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.t += 1
        if self.suite == "displace" and self._maybe_displace(self.env.unwrapped):
            obs = self._observe()
        return self._to_policy(obs), reward, terminated, truncated, info

    def perturbation_record(self) -> dict:
        """What this episode's perturbation was (JSON-safe; fetched with ``vector_env.call``)."""
        rec = dict(self._record)
        if self.suite == "action_noise" and self.active:
            n = rec["steps"]
            rec["mean_abs_noise"] = rec.pop("sum_abs_noise") / n if n else 0.0
            rec["clipped_fraction"] = rec.pop("clipped") / (n * len(self._low)) if n else 0.0
        return _jsonable(rec)

    # -- observation path

    def _observe(self):
        """The observation of the current simulator state, as CPUGymWrapper returns it."""
        from mani_skill.utils import common

        base = self.env.unwrapped
        return common.unbatch(common.to_numpy(base.get_obs(base.get_info())))

    def _to_policy(self, obs):
        if self.suite == "obs_noise" and self.active:
            obs = self._noisy(obs)
        if self.suite == "delay" and self.active:
            if self.t == 0:
                self._history = deque([obs] * (int(self.level) + 1), maxlen=int(self.level) + 1)
            else:
                self._history.append(obs)
            obs = self._history[0]
        return obs

    def _noisy(self, obs):
        if isinstance(obs, dict):
            out = dict(obs)
            for group in ("agent", "extra"):
                if group in out:
                    out[group] = self._noisy_tree(out[group])
            return out
        x = np.asarray(obs)
        return (x + self.rng.normal(size=x.shape) * self.value).astype(x.dtype)

    def _noisy_tree(self, tree):
        if isinstance(tree, dict):
            return {k: self._noisy_tree(tree[k]) for k in sorted(tree)}
        x = np.asarray(tree)
        if not np.issubdtype(x.dtype, np.floating):
            return tree
        return (x + self.rng.normal(size=x.shape) * self.value).astype(x.dtype)

    # -- per-suite reset hooks (return True when the simulator state changed)

    def _reset_spawn(self, base) -> bool:
        task, s = self.task, self.value
        centre = np.asarray(getattr(base, "cube_spawn_center", (0.0, 0.0)), dtype=np.float64)
        rec = self._record
        rec["scale"] = self.level
        rec["centre_xy"] = centre.tolist()
        obj_old = None
        for name in (task.obj, *task.others):
            actor = getattr(base, name)
            xy = _xy(actor)
            new = centre + s * (xy - centre)
            if name == task.obj:
                obj_old, obj_new = xy, new
            if self.active:
                _set_xy(actor, new)
            rec[f"{name}_xy_nominal"], rec[f"{name}_xy"] = xy.tolist(), new.tolist()
        if task.goal is not None:
            goal = getattr(base, task.goal)
            g = _xy(goal)
            g_new = g + (obj_new - obj_old) if task.goal_mode == "offset" else centre + s * (g - centre)
            if self.active:
                _set_xy(goal, g_new)
            rec["goal_xy_nominal"], rec["goal_xy"] = g.tolist(), g_new.tolist()
        return self.active

    def _reset_size(self, base) -> bool:
        self._record.update(half_size=_half_size(base), nominal_half_size=self.nominal_half_size)
        return False

    def _reset_displace(self, base) -> bool:
        lo = max(1, int(round(DISPLACE_STEP_RANGE[0] * self.horizon)))
        hi = max(lo, int(round(DISPLACE_STEP_RANGE[1] * self.horizon)))
        step = int(self.rng.integers(lo, hi + 1))
        theta = float(self.rng.uniform(0.0, 2.0 * math.pi))
        self._record.update(distance_m=self.value / 100.0, planned_step=step, step_range=[lo, hi],
                            direction_deg=math.degrees(theta), applied_step=None, vector_xy=None,
                            pos_before=None, pos_after=None, waited_for_release=False, direction_tries=0)
        return False

    def _reset_action_noise(self, base) -> bool:
        if self.active:
            self._record.update(std=self.action_std.tolist(), steps=0, sum_abs_noise=0.0, clipped=0)
        return False

    def _reset_obs_noise(self, base) -> bool:
        self._record["std"] = self.value
        return False

    def _reset_delay(self, base) -> bool:
        self._record["delay_steps"] = int(self.level)
        return False

    # -- displace

    def _maybe_displace(self, base) -> bool:
        rec = self._record
        if not self.active or rec["applied_step"] is not None or self.t < rec["planned_step"]:
            return False
        moved = displace_object(base, self.task, self.value / 100.0, math.radians(rec["direction_deg"]))
        if moved is None:
            rec["waited_for_release"] = True
            return False
        rec.update(applied_step=self.t, **moved)
        return True

    # -- visual

    def _reset_visual(self, base) -> bool:
        if not self.active:
            return False
        if self._visual_scene is not base.scene:  # first reset, or ManiSkill reconfigured the scene
            self._cache_visual(base)
        v, rng, rec = VISUAL_LEVELS[self.level], self.rng, self._record
        from transforms3d.quaternions import axangle2quat, qmult
        import sapien

        sign = 1.0 if rng.random() < 0.5 else -1.0
        factor = 1.0 + sign * v.light
        tilts = []
        for comp, colour, pose in self._lights:
            a = rng.uniform(0.0, 2.0 * math.pi)
            axis = np.array([math.cos(a), math.sin(a), 0.0])
            q = qmult(axangle2quat(axis, math.radians(v.tilt_deg)), pose.q)
            comp.color = (colour * factor).tolist()
            comp.entity_pose = sapien.Pose(pose.p, q)
            tilts.append(axis.tolist())
        base.scene.ambient_light = (self._ambient * factor).tolist()
        rec.update(light_factor=factor, light_tilt_deg=v.tilt_deg, light_tilt_axes=tilts)
        if v.table:
            rgb = rng.uniform(0.15, 0.95, 3)
            _paint(self._table_parts, rgb)
            rec["table_rgb"] = rgb.tolist()
        if v.floor:
            rgb = rng.uniform(0.15, 0.95, 3)
            _paint(self._floor_parts, rgb)
            rec["floor_rgb"] = rgb.tolist()
        if v.cam_shift or v.cam_turn_deg:
            cams = {}
            for name, cam, pose in self._cameras:
                u = rng.normal(size=3)
                u /= np.linalg.norm(u)
                axis = rng.normal(size=3)
                axis /= np.linalg.norm(axis)
                q = qmult(axangle2quat(axis, math.radians(v.cam_turn_deg)), pose.q)
                cam.set_local_pose(sapien.Pose(pose.p + v.cam_shift * u, q))
                cams[name] = {"shift_m": (v.cam_shift * u).tolist(), "turn_axis": axis.tolist(),
                              "turn_deg": v.cam_turn_deg}
            rec["cameras"] = cams
        if self._distractors:
            avoid = []
            if self.task is not None:
                avoid = [_xy(getattr(base, n)) for n in (self.task.obj, *self.task.others)]
                if self.task.goal:
                    avoid.append(_xy(getattr(base, self.task.goal)))
            placed = []
            for (shape, size), actor in zip(DISTRACTORS, self._distractors):
                for _ in range(200):
                    xy = np.array([rng.uniform(*DISTRACTOR_REGION[0]), rng.uniform(*DISTRACTOR_REGION[1])])
                    if all(np.linalg.norm(xy - o) >= DISTRACTOR_CLEARANCE for o in avoid):
                        break
                rgb = rng.uniform(0.0, 1.0, 3)
                _paint(_render_parts(actor), rgb)
                _set_xyz(actor, np.array([xy[0], xy[1], size]))
                avoid.append(xy)
                placed.append({"shape": shape, "size_m": size, "xy": xy.tolist(), "rgb": rgb.tolist()})
            rec["distractors"] = placed
        return True

    def _cache_visual(self, base) -> None:
        """Remember the nominal lights and camera poses of the current scene (and build distractors)."""
        import sapien

        scene = base.scene
        self._lights = []
        for sub in scene.sub_scenes:
            for ent in sub.entities:
                for comp in ent.components:
                    if isinstance(comp, sapien.render.RenderDirectionalLightComponent):
                        self._lights.append((comp, np.asarray(comp.color, np.float64), comp.entity_pose))
        self._ambient = np.asarray(scene.ambient_light, np.float64)
        self._cameras = []
        for name, sensor in sorted(base._sensors.items()):
            cam = getattr(sensor, "camera", None)
            if cam is not None and hasattr(cam, "set_local_pose"):
                self._cameras.append((name, cam, cam._render_cameras[0].get_local_pose()))
        ts = getattr(base, "table_scene", None)
        self._table_parts = _render_parts(ts.table) if ts is not None and hasattr(ts, "table") else []
        self._floor_parts = _render_parts(ts.ground) if ts is not None and hasattr(ts, "ground") else []
        self._distractors = []
        n = VISUAL_LEVELS[self.level].distractors
        if n:
            from mani_skill.utils.building import actors

            for i, (shape, size) in enumerate(DISTRACTORS[:n]):
                kw = dict(color=[1, 1, 0, 1], name=f"perturb_distractor_{i}", body_type="kinematic",
                          add_collision=False, initial_pose=sapien.Pose(p=[2.0 + i, 2.0, size]))
                self._distractors.append(actors.build_cube(scene, half_size=size, **kw) if shape == "cube"
                                         else actors.build_sphere(scene, radius=size, **kw))
        self._visual_scene = scene


# ----------------------------------------------------------------------------- scene helpers

def displace_object(base, task: TaskSpec, distance_m: float, theta0: float) -> dict | None:
    """Move ``task.obj`` sideways by ``distance_m`` in direction ``theta0`` (radians), or the next
    of 8 directions 45 deg apart that keeps it on the table, off the other cubes and away from a
    low gripper (the ``displace`` suite's rule; the drawn direction is forced when none is free).
    Returns what was done, or None (nothing moved) while a liftable object is grasped or lifted."""
    actor = getattr(base, task.obj)
    hs = _half_size(base)
    pos = actor.pose.p[0].cpu().numpy().astype(np.float64)
    if task.can_lift:
        grasped = bool(np.asarray(base.agent.is_grasping(actor).cpu()).reshape(-1)[0])
        if grasped or pos[2] > hs + 5e-3:
            return None
    tcp = base.agent.tcp.pose.p[0].cpu().numpy().astype(np.float64)
    others = [_xy(getattr(base, n)) for n in task.others]
    chosen, tries, forced = None, 0, False
    for j in range(8):
        tries += 1
        th = theta0 + j * math.pi / 4
        new = pos[:2] + distance_m * np.array([math.cos(th), math.sin(th)])
        if _free(new, hs, tcp, others):
            chosen = new
            break
    if chosen is None:  # nowhere free: apply the drawn direction anyway and say so
        chosen = pos[:2] + distance_m * np.array([math.cos(theta0), math.sin(theta0)])
        forced = True
    _set_xy(actor, chosen)
    after = actor.pose.p[0].cpu().numpy().astype(np.float64)
    out = dict(vector_xy=(chosen - pos[:2]).tolist(), pos_before=pos.tolist(), pos_after=after.tolist(),
               direction_tries=tries)
    if task.goal is not None:  # where the push sent the object relative to its way to the goal
        goal = _xy(getattr(base, task.goal))
        out["goal_xy"] = goal.tolist()
        out["angle_to_goal_deg"] = _angle_deg(chosen - pos[:2], goal - pos[:2])
    if forced:
        out["forced"] = True
    return out


def _angle_deg(a, b) -> float | None:
    """Unsigned angle between two xy vectors in degrees (None when either is ~zero)."""
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na < 1e-9 or nb < 1e-9:
        return None
    return math.degrees(math.acos(max(-1.0, min(1.0, float(np.dot(a, b)) / (na * nb)))))


DIRECTION_CLASSES = (("toward_goal", 45.0), ("sideways", 135.0), ("away_from_goal", math.inf))  # angle below


def direction_breakdown(records: list[dict]) -> dict | None:
    """Success of ``displace`` episodes by where the push sent the object relative to its way to
    the goal: ``toward_goal`` (< 45 deg), ``sideways`` (45-135 deg), ``away_from_goal`` (> 135 deg).

    Returns ``{class: {"episodes": n, "success_once": k}}`` over the episodes whose push was applied
    and recorded an angle, or None when no episode has one (other suites, tasks without a goal).
    """
    def direction(r: dict) -> str | None:
        angle = (r.get("perturbation") or {}).get("angle_to_goal_deg")
        return None if angle is None else next(n for n, bound in DIRECTION_CLASSES if angle < bound)

    return _success_by_class(records, [n for n, _ in DIRECTION_CLASSES], direction)


def _success_by_class(records: list[dict], classes: list[str], classify) -> dict | None:
    """``{class: {"episodes": n, "success_once": k}}`` over the records ``classify`` assigns a class
    (it returns None for the others), every class listed; None when it assigns none."""
    out = {c: {"episodes": 0, "success_once": 0} for c in classes}
    seen = False
    for r in records:
        c = classify(r)
        if c is None:
            continue
        seen = True
        out[c]["episodes"] += 1
        out[c]["success_once"] += int(bool(r["success_once"]))
    return out if seen else None


def push_outcomes(records: list[dict]) -> dict | None:
    """Success of ``displace`` episodes split by whether the push landed before the episode's first
    success: ``pushed_before_success`` (the push could change the outcome; its success rate is the
    recovery rate) and ``not_pushed_before_success`` (never pushed, or pushed after success, e.g. a
    grasped object is pushed only once it rests on the table again).

    A push applied after step ``k`` acts after that step's success check, and ``episode_length`` is
    the first success step (the horizon if none), so the push came first when ``applied_step <
    episode_length``. None when no record is a displace episode.
    """
    def when(r: dict) -> str | None:
        p = r.get("perturbation") or {}
        if p.get("suite") != "displace":
            return None
        step = p.get("applied_step")
        return ("pushed_before_success" if step is not None and step < r["episode_length"]
                else "not_pushed_before_success")

    return _success_by_class(records, ["pushed_before_success", "not_pushed_before_success"], when)


def _half_size(base) -> float:
    hs = getattr(base, "cube_half_size", 0.02)
    arr = np.asarray(hs.cpu() if hasattr(hs, "cpu") else hs, dtype=np.float64).reshape(-1)
    return float(arr[-1])


def _xy(actor) -> np.ndarray:
    return actor.pose.p[0, :2].cpu().numpy().astype(np.float64)


def _set_xyz(actor, xyz) -> None:
    import torch
    from mani_skill.utils.structs.pose import Pose

    p = torch.as_tensor(np.asarray(xyz, np.float32)[None])
    actor.set_pose(Pose.create_from_pq(p=p, q=actor.pose.q.clone()))


def _set_xy(actor, xy) -> None:
    p = actor.pose.p[0].cpu().numpy().astype(np.float64)
    p[:2] = xy
    _set_xyz(actor, p)


def _free(xy, hs, tcp, others) -> bool:
    """May a cube of half size ``hs`` be put at ``xy``? (on the table, off other cubes, off the gripper)"""
    m = TABLE_MARGIN
    if not (TABLE_X[0] + m <= xy[0] <= TABLE_X[1] - m and TABLE_Y[0] + m <= xy[1] <= TABLE_Y[1] - m):
        return False
    if any(np.linalg.norm(xy - o) < 2 * math.sqrt(2) * hs + 0.005 for o in others):
        return False
    if tcp[2] < 0.10 and np.linalg.norm(xy - tcp[:2]) < 0.05:
        return False
    return True


def _render_parts(actor) -> list:
    """The render materials' owners (mesh parts or primitive shapes) of a ManiSkill actor."""
    import sapien

    parts = []
    for ent in actor._objs:
        body = ent.find_component_by_type(sapien.render.RenderBodyComponent)
        if body is None:
            continue
        for shape in body.render_shapes:
            sub = getattr(shape, "parts", None)
            parts += list(sub) if sub else [shape]
    return parts


def _paint(parts, rgb) -> None:
    """Flat colour: the base-colour texture (which SAPIEN draws instead of the base colour) is removed."""
    for part in parts:
        mat = part.material
        if mat.base_color_texture is not None:
            mat.base_color_texture = None
        mat.base_color = [float(rgb[0]), float(rgb[1]), float(rgb[2]), 1.0]


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x


# ----------------------------------------------------------------------------- factory

def make_perturbed_env(env_id: str, suite: str, level, obs_mode: str = "state", control_mode: str = "pd_ee_delta_pos",
                       render_mode: str | None = None, max_episode_steps: int | None = None,
                       image_size: int | None = None, **kwargs):
    """``make_env(..., cpu_wrapper=True)`` wrapped in :class:`PerturbWrapper` (picklable via partial).

    The ``displace`` step is placed on :func:`placement_horizon`, so a longer ``max_episode_steps``
    gives the policy more time to recover from the same push.
    """
    from .maniskill import make_env

    check_suite(suite, level, env_id, obs_mode)
    env = make_env(env_id, obs_mode=obs_mode, control_mode=control_mode, render_mode=render_mode,
                   max_episode_steps=max_episode_steps, image_size=image_size, cpu_wrapper=True, **kwargs)
    return PerturbWrapper(env, suite, level, env_id, obs_mode=obs_mode,
                          horizon=placement_horizon(env_id, max_episode_steps))


def placement_horizon(env_id: str, max_episode_steps: int | None = None) -> int:
    """The ``H`` that places the ``displace`` step: the task's standard evaluation horizon.

    A longer episode keeps the push where it is (more time to recover, same perturbation); a
    shorter one places it inside the shorter episode.
    """
    from .maniskill import EVAL_MAX_EPISODE_STEPS

    standard = EVAL_MAX_EPISODE_STEPS.get(env_id, 100)
    return min(standard, int(max_episode_steps)) if max_episode_steps else standard
