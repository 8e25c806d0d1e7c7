"""Render ManiSkill demo episodes to video by restoring their saved env states (no physics)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..data.maniskill import read_meta
from ..data.video_io import write_video
from ..errors import DataError
from .maniskill import make_env


def _take(group, i: int) -> dict:
    """Step ``i`` of a nested env_states group, batched as ``(1, ...)``."""
    import h5py

    return {k: _take(v, i) if isinstance(v, h5py.Group) else v[i:i + 1] for k, v in group.items()}


def render_episodes(h5_path: str | Path, out_dir: str | Path, image_size: int = 64, max_episodes: int | None = None,
                    fps: int = 20, progress: bool = True) -> dict:
    """Write ``episode_<k>.mp4`` (T+1 frames) and ``episode_<k>.actions.npy`` (T, A) per episode.

    The actions are the dataset's own (its control mode): action ``i`` moves frame ``i`` to
    frame ``i + 1``. Each file is written atomically; a summary goes to ``videos.json``.
    """
    import h5py
    from tqdm.auto import tqdm

    h5_path, out = Path(h5_path), Path(out_dir)
    meta = read_meta(h5_path)
    info = meta["env_info"]
    env_id = info["env_id"]
    control_mode = info["env_kwargs"].get("control_mode", "pd_joint_pos")
    env = make_env(env_id, obs_mode="rgb", control_mode=control_mode, image_size=image_size)
    base = env.unwrapped
    out.mkdir(parents=True, exist_ok=True)
    episodes = meta["episodes"][:max_episodes]
    written, t0, frames_total = [], time.perf_counter(), 0
    try:
        with h5py.File(h5_path, "r") as f:
            for ep in tqdm(episodes, desc=f"render {env_id}", disable=not progress, dynamic_ncols=True):
                key = f"traj_{ep['episode_id']}"
                if key not in f or "env_states" not in f[key]:
                    raise DataError(f"{h5_path}: {key} has no env_states to restore")
                states, actions = f[f"{key}/env_states"], f[f"{key}/actions"][:]
                base.reset(seed=ep.get("episode_seed", 0))
                frames = []
                for i in range(actions.shape[0] + 1):
                    base.set_state_dict(_take(states, i))
                    obs = base.get_obs()
                    cam = sorted(obs["sensor_data"].keys())[0]
                    frames.append(np.asarray(obs["sensor_data"][cam]["rgb"][0].cpu().numpy(), dtype=np.uint8))
                name = f"episode_{ep['episode_id']:04d}"
                write_video(out / f"{name}.mp4", np.stack(frames), fps=fps)
                tmp = out / f".{name}.actions.tmp.npy"
                np.save(tmp, actions.astype(np.float32), allow_pickle=False)
                tmp.replace(out / f"{name}.actions.npy")
                written.append(name)
                frames_total += len(frames)
    finally:
        env.close()
    summary = {"source": str(h5_path), "env_id": env_id, "control_mode": control_mode, "image_size": image_size,
               "fps": fps, "episodes": len(written), "frames": frames_total,
               "seconds": round(time.perf_counter() - t0, 2)}
    summary["frames_per_second"] = round(frames_total / max(summary["seconds"], 1e-9), 1)
    (out / "videos.json").write_text(json.dumps(summary, indent=2))
    return summary
