"""ManiSkill trajectory files (``<name>.h5`` + ``<name>.json``) read directly with h5py.

Each episode becomes arrays with a leading time axis::

    state  (T+1, Ds) float32   the flat state vector (state mode) or agent+extra (rgb mode)
    qpos   (T+1, Dq) float32   robot joint positions (proprioception)
    action (T,   A)  float32
    image  (T+1, H, W, 3) uint8   rgb mode only (first camera)

:func:`obs_to_frame` converts one environment observation the same way, so training data and
the live policy input can never disagree.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError

STATE_GROUPS = ("agent", "extra")


@dataclass
class DemoMeta:
    path: str
    env_id: str
    obs_mode: str
    control_mode: str
    max_episode_steps: int
    num_episodes: int
    state_dim: int
    qpos_dim: int
    action_dim: int
    camera: str | None = None
    image_size: int | None = None
    env_kwargs: dict = field(default_factory=dict)
    episode_seeds: list[int] = field(default_factory=list)  # reset seed of each loaded episode


@dataclass
class Episode:
    state: np.ndarray
    qpos: np.ndarray
    action: np.ndarray
    image: np.ndarray | None = None
    # (T + 1, 3) position of a scene object per observation (env_states/actors/<actor>), for the
    # rgb policies' auxiliary loss; None when not asked for
    aux: np.ndarray | None = None

    @property
    def length(self) -> int:
        return self.action.shape[0]


def _flatten_group(group, prefix="") -> list[np.ndarray]:
    """Leaves of a nested mapping in sorted-key order, each as (..., n) float32."""
    leaves = []
    for key in sorted(group.keys()):
        val = group[key]
        if hasattr(val, "keys"):
            leaves += _flatten_group(val, f"{prefix}{key}/")
        else:
            arr = np.asarray(val)
            leaves.append(arr.astype(np.float32).reshape(*arr.shape[:1], -1) if arr.ndim else arr.reshape(1))
    return leaves


def flatten_state(obs: dict) -> np.ndarray:
    """agent/* then extra/* leaves, sorted by key, concatenated: ``(T, Ds)``."""
    parts = []
    for g in STATE_GROUPS:
        if g in obs:
            parts += _flatten_group(obs[g])
    return np.concatenate(parts, axis=-1)


def first_camera(obs: dict) -> str:
    cams = sorted(obs["sensor_data"].keys()) if "sensor_data" in obs else []
    if not cams:
        raise DataError("observation has no sensor_data cameras; rgb policies need obs_mode=rgb")
    return cams[0]


def obs_to_frame(obs, obs_mode: str, qpos_dim: int, camera: str | None = None) -> dict:
    """One env observation (unbatched numpy, as CPUGymWrapper returns) -> policy frame dict."""
    if obs_mode == "state":
        state = np.asarray(obs, dtype=np.float32).reshape(-1)
        return {"state": state, "qpos": state[:qpos_dim]}
    batched = {g: _add_time_axis(obs[g]) for g in STATE_GROUPS if g in obs}
    cam = camera or first_camera(obs)
    return {"state": flatten_state(batched)[0], "qpos": np.asarray(obs["agent"]["qpos"], dtype=np.float32),
            "image": np.asarray(obs["sensor_data"][cam]["rgb"], dtype=np.uint8)}


def _add_time_axis(tree):
    if hasattr(tree, "keys"):
        return {k: _add_time_axis(v) for k, v in tree.items()}
    return np.asarray(tree)[None]


def _robot_qpos_dim(traj, obs: np.ndarray) -> int | None:
    """Find the robot's DoF: the articulation whose stored qpos equals the leading obs entries."""
    arts = traj.get("env_states/articulations")
    if arts is None:
        return None
    for name in arts:
        arr = arts[name][:]
        dof2 = arr.shape[1] - 13  # pose (7) + root velocities (6) + qpos + qvel
        if dof2 <= 0 or dof2 % 2:
            continue
        dof = dof2 // 2
        if dof <= obs.shape[1] and np.allclose(arr[:, 13:13 + dof], obs[:, :dof], atol=1e-4):
            return dof
    return None


def _open(path: Path):
    import h5py

    if not path.is_file():
        raise DataError(f"{path}: demo file not found")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise DataError(f"{path}: not a readable HDF5 file (truncated or corrupt?): {e}") from None


def read_meta(path: str | Path) -> dict:
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not meta_path.is_file():
        raise DataError(f"{meta_path}: missing; ManiSkill demos come as <name>.h5 with <name>.json beside it")
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{meta_path}: invalid JSON ({e})") from None
    if "env_info" not in meta or "episodes" not in meta:
        raise DataError(f"{meta_path}: not ManiSkill trajectory metadata (needs 'env_info' and 'episodes')")
    return meta


def episode_seed(ep: dict) -> int | None:
    """The reset seed of one episode entry of a ManiSkill trajectory .json (None if unknown)."""
    seed = ep.get("episode_seed", (ep.get("reset_kwargs") or {}).get("seed"))
    if isinstance(seed, list):
        seed = seed[0] if len(seed) == 1 else None
    return None if seed is None else int(seed)


def read_demos(path: str | Path, max_episodes: int | None = None, load_images: bool = True,
               aux_actor: str | None = None) -> tuple[DemoMeta, list[Episode]]:
    """Read a ManiSkill trajectory file; every problem is a DataError naming file and key.

    ``aux_actor``: also read that object's position at every observation from the saved env
    states (``env_states/actors/<aux_actor>``, position first) into ``Episode.aux``."""
    path = Path(path)
    meta = read_meta(path)
    info = meta["env_info"]
    kwargs = info.get("env_kwargs", {})
    obs_mode = kwargs.get("obs_mode", "none")
    if obs_mode in (None, "none"):
        raise DataError(f"{path}: has no observations (obs_mode={obs_mode}); convert it first, e.g. "
                        "tools/generate_demos.py --obs-mode state")
    control_mode = kwargs.get("control_mode") or (meta["episodes"][0].get("control_mode") if meta["episodes"] else None)
    episodes, qpos_dim, camera, image_size = [], None, None, None
    seed_of = {}
    for ep in meta["episodes"]:
        seed = episode_seed(ep)
        if "episode_id" in ep and seed is not None:
            seed_of[f"traj_{ep['episode_id']}"] = seed
    episode_seeds = []
    with _open(path) as f:
        keys = sorted((k for k in f.keys() if k.startswith("traj_")), key=lambda k: int(k.split("_")[1]))
        if not keys:
            raise DataError(f"{path}: no traj_* groups; not a ManiSkill trajectory file")
        for key in keys[:max_episodes]:
            if key in seed_of:
                episode_seeds.append(seed_of[key])
            traj = f[key]
            for need in ("actions", "obs"):
                if need not in traj:
                    raise DataError(f"{path}: {key} has no '{need}' dataset; not a ManiSkill trajectory")
            try:
                action = traj["actions"][:].astype(np.float32)
                obs = traj["obs"]
                if hasattr(obs, "keys"):  # dict observation (rgb, state_dict)
                    obs_dict = {g: obs[g] for g in obs.keys()}
                    state = flatten_state({g: obs_dict[g] for g in STATE_GROUPS if g in obs_dict})
                    qpos = obs["agent/qpos"][:].astype(np.float32)
                    image = None
                    if load_images and "sensor_data" in obs:
                        camera = camera or sorted(obs["sensor_data"].keys())[0]
                        image = obs[f"sensor_data/{camera}/rgb"][:]
                        image_size = image.shape[1]
                else:
                    state = obs[:].astype(np.float32)
                    if qpos_dim is None:
                        qpos_dim = _robot_qpos_dim(traj, state)
                        if qpos_dim is None:
                            raise DataError(f"{path}: {key}: cannot locate the robot qpos inside the state "
                                            "vector (no matching env_states/articulations entry)")
                    qpos, image = state[:, :qpos_dim], None
            except (OSError, KeyError) as e:
                raise DataError(f"{path}: {key}: unreadable ({e}); the file may be truncated") from None
            if state.shape[0] != action.shape[0] + 1:
                raise DataError(f"{path}: {key}: {state.shape[0]} observations for {action.shape[0]} actions "
                                "(expected one more observation than actions)")
            for name, arr in (("actions", action), ("obs", state)):
                bad = ~np.isfinite(arr)
                if bad.any():
                    step = int(np.argwhere(bad)[0][0])
                    raise DataError(f"{path}: {key}/{name} contains NaN or inf (first at step {step})")
            aux = None
            if aux_actor:
                name = f"env_states/actors/{aux_actor}"
                if name not in traj:
                    have = sorted(traj["env_states/actors"].keys()) if "env_states/actors" in traj else []
                    raise DataError(f"{path}: {key} has no '{name}' dataset (actors: {have}); "
                                    f"set policy.image_aux_actor to one of them")
                aux = traj[name][:, :3].astype(np.float32)
                if aux.shape[0] != state.shape[0]:
                    raise DataError(f"{path}: {key}/{name} has {aux.shape[0]} rows for {state.shape[0]} observations")
            episodes.append(Episode(state=state, qpos=qpos, action=action, image=image, aux=aux))
    first = episodes[0]
    dm = DemoMeta(path=str(path), env_id=info.get("env_id", "?"), obs_mode=obs_mode, control_mode=control_mode,
                  max_episode_steps=int(info.get("max_episode_steps") or 0), num_episodes=len(episodes),
                  state_dim=first.state.shape[1], qpos_dim=first.qpos.shape[1], action_dim=first.action.shape[1],
                  camera=camera, image_size=image_size, env_kwargs=kwargs, episode_seeds=episode_seeds)
    if obs_mode.startswith("rgb") and load_images and first.image is None:
        raise DataError(f"{path}: obs_mode {obs_mode} but no sensor_data/*/rgb images in the file")
    return dm, episodes


def check_matches(meta: DemoMeta, env_id: str | None, control_mode: str, obs_mode: str) -> None:
    """The dataset must have been recorded for what the config asks; else a clear error.
    (Unknown dataset fields, as in a foreign LeRobot dataset, are not checked.)"""
    if meta.control_mode and control_mode != meta.control_mode:
        raise DataError(f"{meta.path}: dataset control mode is {meta.control_mode!r} but the config asks for "
                        f"policy.control_mode={control_mode!r}; regenerate the demos with "
                        f"--control-mode {control_mode} or change the config")
    if env_id and meta.env_id and env_id != meta.env_id:
        raise DataError(f"{meta.path}: dataset is for {meta.env_id} but the config asks for policy.env_id={env_id!r}")
    want_rgb, have_rgb = obs_mode == "rgb", meta.obs_mode.startswith("rgb")
    if want_rgb != have_rgb:
        raise DataError(f"{meta.path}: dataset obs_mode is {meta.obs_mode!r} but the config asks for "
                        f"policy.obs_mode={obs_mode!r}")
