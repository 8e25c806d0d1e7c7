"""ManiSkill environment factory with offline guarantees.

Every ManiSkill import in the toolkit goes through :func:`import_maniskill`, which makes asset
downloads impossible: an environment that would need one fails at once with a
:class:`~a2a_temporal.errors.DataError` naming the missing assets (ManiSkill itself would ask
"(y|n)" on stdin: an EOFError in CI, a hang in a terminal).
"""
from __future__ import annotations

import os

from ..errors import A2AError, DataError

# ManiSkill's evaluation horizons for the tasks we configure (its baselines' settings).
EVAL_MAX_EPISODE_STEPS = {
    "PushCube-v1": 100, "PickCube-v1": 100, "StackCube-v1": 200, "PegInsertionSide-v1": 300,
    "PullCube-v1": 100, "LiftPegUpright-v1": 100, "PlaceSphere-v1": 100, "PullCubeTool-v1": 100,
    "PlugCharger-v1": 200,
}

_PATCHED = False


class AssetDownloadRequired(DataError):
    """The environment needs assets that are not on this machine."""


def _refuse_download(message, *args, **kwargs):
    raise AssetDownloadRequired(
        f"ManiSkill wants to download assets, which this toolkit never does ({str(message).strip()}); "
        "choose an environment that works offline, e.g. PushCube-v1, PickCube-v1, StackCube-v1")


def import_maniskill():
    """Import ManiSkill with every download path replaced by an immediate error."""
    global _PATCHED
    os.environ.setdefault("MS_SKIP_ASSET_DOWNLOAD_PROMPT", "0")
    try:
        import mani_skill.envs  # noqa: F401  (registers the environments)
        from mani_skill.utils import download_asset
    except ImportError as e:
        raise A2AError(f"ManiSkill is not installed ({e}); install the simulator extra: "
                       "pip install 'a2a_temporal[sim]'") from None
    if not _PATCHED:
        download_asset.prompt_yes_no = _refuse_download
        download_asset.download = _refuse_download
        _PATCHED = True
    return mani_skill


def registered_env_ids() -> list[str]:
    import_maniskill()
    from mani_skill.utils.registration import REGISTERED_ENVS

    return sorted(REGISTERED_ENVS)


def check_env_offline(env_id: str) -> None:
    """Raise a clear error if ``env_id`` is unknown or needs assets that are not downloaded."""
    import_maniskill()
    from mani_skill.utils import assets
    from mani_skill.utils.registration import REGISTERED_ENVS

    if env_id not in REGISTERED_ENVS:
        close = [e for e in REGISTERED_ENVS if env_id.split("-")[0].lower() in e.lower()][:5]
        raise DataError(f"unknown ManiSkill env id {env_id!r}" + (f"; did you mean {close}?" if close else ""))
    missing = []
    for asset_id in REGISTERED_ENVS[env_id].asset_download_ids or []:
        ids = (assets.expand_data_group_into_individual_data_source_ids(asset_id)
               if asset_id in assets.DATA_GROUPS else [asset_id])
        missing += [a for a in ids if not assets.is_data_source_downloaded(a)]
    if missing:
        shown = ", ".join(missing[:5]) + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else "")
        raise AssetDownloadRequired(
            f"env {env_id} needs asset download(s) {shown}; nothing is downloaded at run time. "
            "Use an environment that works offline, e.g. PushCube-v1, PickCube-v1, StackCube-v1")


def registered_max_episode_steps(env_id: str) -> int | None:
    """The episode limit ``env_id`` is registered with in ManiSkill (None if it has none)."""
    import_maniskill()
    import gymnasium as gym

    try:
        return gym.spec(env_id).max_episode_steps
    except gym.error.Error:
        return None


def render_backend() -> str:
    """SAPIEN render backend: the GPU when CUDA is visible, otherwise software Vulkan."""
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def make_env(env_id: str, obs_mode: str = "state", control_mode: str = "pd_ee_delta_pos",
             render_mode: str | None = None, max_episode_steps: int | None = None,
             image_size: int | None = None, cpu_wrapper: bool = False, **kwargs):
    """One CPU-simulated ManiSkill env (``num_envs=1``).

    ``cpu_wrapper=True`` returns numpy, unbatched observations (ManiSkill's CPUGymWrapper,
    terminations ignored so every episode runs to its horizon) for gymnasium vector envs.
    """
    check_env_offline(env_id)
    import gymnasium as gym

    if image_size:
        kwargs["sensor_configs"] = dict(width=image_size, height=image_size)
    try:
        env = gym.make(env_id, obs_mode=obs_mode, control_mode=control_mode, render_mode=render_mode,
                       sim_backend="physx_cpu", render_backend=render_backend(),
                       max_episode_steps=max_episode_steps, **kwargs)
    except AssetDownloadRequired:
        raise
    except (AssertionError, ValueError, KeyError) as e:
        raise DataError(f"cannot make {env_id} with obs_mode={obs_mode!r}, control_mode={control_mode!r}: {e}") from None
    if cpu_wrapper:
        from mani_skill.utils.wrappers.gymnasium import CPUGymWrapper

        env = CPUGymWrapper(env, ignore_terminations=True, record_metrics=True)
    return env
