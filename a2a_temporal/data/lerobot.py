"""LeRobot dataset format v3.0 folders, read and written with pyarrow (no ``lerobot`` import).

Layout (one row per frame in ``data``, one row per episode in ``meta/episodes``)::

    meta/info.json                       codebase_version "v3.0", fps, features, data_path, video_path, ...
    meta/episodes/chunk-000/file-000.parquet   episode_index, length, data/chunk_index, data/file_index,
                                         dataset_from_index, dataset_to_index,
                                         videos/<key>/{chunk_index,file_index,from_timestamp,to_timestamp}
    meta/tasks.parquet, meta/stats.json
    data/chunk-000/file-000.parquet      <feature keys>, timestamp, frame_index, episode_index, index, task_index
    videos/<key>/chunk-000/file-000.mp4  episodes concatenated; frame of (episode, t) at
                                         round((from_timestamp + timestamp[t]) * fps)

A LeRobot episode has ``T`` frames, each an observation and an action. :func:`read_lerobot`
returns the arrays of :mod:`a2a_temporal.data.maniskill`::

    state  (T+1, Ds) float32    qpos (T+1, Dq) float32    action (T, A) float32
    image  (T+1, H, W, 3) uint8 or None

Observation ``T`` (after the last action; policy windows never read it) is the final
observation when the dataset stores one (:func:`write_lerobot` does, in the episodes table
columns ``a2a_temporal/final/<key>``), else a copy of observation ``T-1``.

Our own metadata lives under ``info.json["a2a_temporal"]``: env_id, obs_mode, control_mode,
max_episode_steps, env_kwargs, episode_seeds (by episode_index), state_key, qpos_dims or
qpos_key, image_key, camera. Defaults for foreign datasets: env_id ``""``, control_mode
``info.json["control_mode"]`` if present else ``""``, obs_mode ``"rgb"`` with an image key else
``"state"``, max_episode_steps the longest loaded episode, no seeds, qpos the whole state
(pass ``qpos_key`` or ``qpos_dims`` to choose).
"""
from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np

from ..errors import DataError
from .maniskill import DemoMeta, Episode

CODEBASE_VERSION = "v3.0"
META_KEY = "a2a_temporal"
FINAL = "a2a_temporal/final/"  # episodes-table column prefix of the final observation per key
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
INDEX_FEATURES = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64",
                  "index": "int64", "task_index": "int64"}


# ----------------------------------------------------------------------------------------- reading

def _column(table, key: str, path: Path) -> np.ndarray:
    """A numeric parquet column as ``(N, D)`` (list columns) or ``(N,)`` (scalars)."""
    import pyarrow as pa

    if key not in table.column_names:
        raise DataError(f"{path}: no column {key!r}; columns: {', '.join(table.column_names)}")
    col = table.column(key).combine_chunks()
    if pa.types.is_list(col.type) or pa.types.is_fixed_size_list(col.type) or pa.types.is_large_list(col.type):
        flat = col.flatten().to_numpy(zero_copy_only=False)
        return flat.reshape(len(col), -1) if len(col) else flat.reshape(0, 0)
    return col.to_numpy(zero_copy_only=False)


def _decode_images(table, key: str, path: Path) -> np.ndarray:
    """An ``image`` feature (struct of PNG/JPEG ``bytes``) as ``(N, H, W, 3)`` uint8."""
    from PIL import Image

    if key not in table.column_names:
        raise DataError(f"{path}: no column {key!r}; columns: {', '.join(table.column_names)}")
    cells = table.column(key).to_pylist()
    return np.stack([np.asarray(Image.open(io.BytesIO(c["bytes"])).convert("RGB")) for c in cells])


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise DataError(f"{path}: not found; {what}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: invalid JSON ({e})") from None


def _episode_rows(root: Path) -> tuple[list[dict], dict[int, Path]]:
    """All rows of ``meta/episodes/*/*.parquet`` sorted by episode_index, and each row's file."""
    import pyarrow.parquet as pq

    files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
    if not files:
        raise DataError(f"{root / 'meta' / 'episodes'}: no chunk-*/file-*.parquet episode tables")
    rows, where = [], {}
    for f in files:
        for r in pq.read_table(f).to_pylist():
            if "episode_index" not in r:
                raise DataError(f"{f}: episode row without 'episode_index'")
            rows.append(r)
            where[int(r["episode_index"])] = f
    return sorted(rows, key=lambda r: r["episode_index"]), where


def _field(row: dict, key: str, path: Path):
    if row.get(key) is None:
        raise DataError(f"{path}: episode {row['episode_index']} has no {key!r} column value")
    return row[key]


def _check_finite(arr: np.ndarray, what: str, episode: int, path: Path) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        raise DataError(f"{path}: episode {episode} {what} contains NaN or inf (first at frame "
                        f"{int(np.argwhere(bad)[0][0])})")


def read_lerobot(root, state_key: str = "observation.state", action_key: str = "action",
                 image_key: str | None = None, qpos_key: str | None = None, qpos_dims: int | None = None,
                 max_episodes: int | None = None) -> tuple[DemoMeta, list[Episode]]:
    """Read a LeRobot v3.0 folder as ``(DemoMeta, [Episode])``; every problem is a one-line DataError.

    ``qpos`` comes from ``qpos_key``, else the first ``qpos_dims`` state entries, else our stored
    metadata, else the whole state. For folders written by :func:`write_lerobot` the stored image
    key is used when ``image_key`` is None and the dataset is rgb.
    """
    import pyarrow.parquet as pq

    from .video_io import read_video

    root = Path(root)
    info_path = root / "meta" / "info.json"
    info = _read_json(info_path, "a LeRobot dataset folder has meta/info.json")
    version = info.get("codebase_version")
    if version != CODEBASE_VERSION:
        raise DataError(f"{info_path}: codebase_version is {version!r}; expected {CODEBASE_VERSION!r} "
                        "(LeRobot dataset format v3.0)")
    ours = info.get(META_KEY) or {}
    features, fps = info.get("features") or {}, float(info.get("fps") or 0)
    if fps <= 0:
        raise DataError(f"{info_path}: 'fps' is {info.get('fps')!r}; expected a positive number")
    if image_key is None and str(ours.get("obs_mode", "")).startswith("rgb"):
        image_key = ours.get("image_key")
    if qpos_key is None and qpos_dims is None and ours.get("state_key", "observation.state") == state_key:
        qpos_key, qpos_dims = ours.get("qpos_key"), ours.get("qpos_dims")
    for role, key in (("state", state_key), ("action", action_key), ("image", image_key), ("qpos", qpos_key)):
        if key is not None and key not in features:
            raise DataError(f"{info_path}: features has no {key!r} (the {role} key); available: "
                            f"{', '.join(sorted(features))}")
    image_dtype = features[image_key].get("dtype") if image_key else None
    if image_key and image_dtype not in ("video", "image"):
        raise DataError(f"{info_path}: feature {image_key!r} has dtype {image_dtype!r}; expected 'video' or 'image'")
    if qpos_dims is not None and not 0 < int(qpos_dims) <= int(np.prod(features[state_key].get("shape") or [0])):
        raise DataError(f"{info_path}: qpos_dims={qpos_dims} does not fit the state {state_key!r} "
                        f"(shape {features[state_key].get('shape')})")
    for key in (state_key, action_key, qpos_key):
        if key and features[key].get("dtype") in ("video", "image", "string"):
            raise DataError(f"{info_path}: feature {key!r} has dtype {features[key].get('dtype')!r}; "
                            "expected a numeric vector")

    rows, row_file = _episode_rows(root)
    seeds_by_index = ours.get("episode_seeds") or []
    tables, videos = {}, {}
    episodes, seeds = [], []
    for row in rows[:max_episodes]:
        e = int(row["episode_index"])
        ep_file = row_file[e]
        length = int(_field(row, "length", ep_file))
        path = root / info.get("data_path", DATA_PATH).format(
            chunk_index=int(_field(row, "data/chunk_index", ep_file)),
            file_index=int(_field(row, "data/file_index", ep_file)))
        if path not in tables:
            if not path.is_file():
                raise DataError(f"{path}: data file missing (needed by episode {e}; listed in {ep_file})")
            table = pq.read_table(path)
            ep_col = _column(table, "episode_index", path)
            order = np.lexsort((_column(table, "frame_index", path), ep_col))  # by episode, then frame
            tables[path] = (table, order, ep_col[order])
        table, order, ep_sorted = tables[path]
        lo, hi = np.searchsorted(ep_sorted, e, "left"), np.searchsorted(ep_sorted, e, "right")
        rows_e = order[lo:hi]
        if len(rows_e) != length:
            raise DataError(f"{path}: episode {e} has {len(rows_e)} frames but {ep_file} says length={length}")
        if length == 0:
            raise DataError(f"{path}: episode {e} has no frames")
        sub = table.take(rows_e)

        def obs(key):  # (T+1, D) float32: the T frames plus the stored final observation (or a copy)
            arr = _column(sub, key, path).astype(np.float32).reshape(length, -1)
            final = row.get(FINAL + key)
            last = np.asarray(final, np.float32).reshape(1, -1) if final is not None else arr[-1:]
            return np.concatenate([arr, last])

        state = obs(state_key)
        action = _column(sub, action_key, path).astype(np.float32).reshape(length, -1)
        qpos = obs(qpos_key) if qpos_key else state[:, :qpos_dims] if qpos_dims else state.copy()
        _check_finite(action, f"action {action_key!r}", e, path)
        _check_finite(state, f"state {state_key!r}", e, path)
        if qpos_key:
            _check_finite(qpos, f"qpos {qpos_key!r}", e, path)
        image = None
        if image_key and image_dtype == "image":
            image = _decode_images(sub, image_key, path)
        elif image_key:
            vpath = root / info.get("video_path", VIDEO_PATH).format(
                video_key=image_key, chunk_index=int(_field(row, f"videos/{image_key}/chunk_index", ep_file)),
                file_index=int(_field(row, f"videos/{image_key}/file_index", ep_file)))
            if vpath not in videos:
                if not vpath.is_file():
                    raise DataError(f"{vpath}: video file missing (needed by episode {e}, key {image_key!r})")
                videos.clear()  # episodes come in file order: keep one decoded file at a time
                videos[vpath] = read_video(vpath)
            frames = videos[vpath]
            t0 = float(_field(row, f"videos/{image_key}/from_timestamp", ep_file))
            ts = (_column(sub, "timestamp", path).astype(np.float64) if "timestamp" in sub.column_names
                  else np.arange(length) / fps)
            idx = np.round((t0 + ts) * fps).astype(np.int64)
            if idx.max() >= len(frames) or idx.min() < 0:
                raise DataError(f"{vpath}: has {len(frames)} frames but episode {e} needs frames "
                                f"{idx.min()}..{idx.max()} (from_timestamp={t0}, length={length}, fps={fps:g}); "
                                "the video is truncated")
            image = frames[idx]
        if image is not None:
            final = row.get(FINAL + image_key)
            last = (np.frombuffer(final, np.uint8).reshape(image.shape[1:]) if final is not None
                    and len(final) == image[0].size else image[-1])
            image = np.concatenate([image, last[None]])
        episodes.append(Episode(state=state, qpos=qpos, action=action, image=image))
        if e < len(seeds_by_index) and seeds_by_index[e] is not None:
            seeds.append(int(seeds_by_index[e]))
    if not episodes:
        raise DataError(f"{root}: no episodes to read (max_episodes={max_episodes})")

    first = episodes[0]
    camera = None
    if image_key:
        camera = ours.get("camera") if image_key == ours.get("image_key") else None
        camera = camera or image_key.split(".")[-1]
    dm = DemoMeta(
        path=str(root), env_id=ours.get("env_id", ""),
        obs_mode=ours.get("obs_mode") or ("rgb" if image_key else "state"),
        control_mode=ours.get("control_mode") or info.get("control_mode") or "",
        max_episode_steps=int(ours.get("max_episode_steps") or max(ep.length for ep in episodes)),
        num_episodes=len(episodes), state_dim=first.state.shape[1], qpos_dim=first.qpos.shape[1],
        action_dim=first.action.shape[1], camera=camera,
        image_size=first.image.shape[1] if first.image is not None else None,
        env_kwargs=dict(ours.get("env_kwargs") or {}), episode_seeds=seeds)
    return dm, episodes


# ----------------------------------------------------------------------------------------- writing

def _stats(x: np.ndarray, image: bool = False) -> dict:
    """mean / std / min / max / count over frames: ``(D,)`` vectors, or ``(3, 1, 1)`` in [0, 1] for images."""
    n, x = len(x), x.astype(np.float64)
    if image:  # (N, H, W, 3) -> per channel
        x = x.reshape(-1, 3) / 255.0
        shape = (3, 1, 1)
    else:
        x = x.reshape(len(x), -1)
        shape = (x.shape[1],)
    return {"min": x.min(0).reshape(shape).tolist(), "max": x.max(0).reshape(shape).tolist(),
            "mean": x.mean(0).reshape(shape).tolist(), "std": x.std(0).reshape(shape).tolist(), "count": [n]}


def _vector_array(x: np.ndarray):
    """``(N, D)`` -> arrow fixed_size_list<D> column (what lerobot's ``Sequence(length=D)`` stores)."""
    import pyarrow as pa

    x = np.ascontiguousarray(x)
    return pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), x.shape[1])


def _write_tasks(path: Path, tasks: list[str]) -> None:
    """``meta/tasks.parquet``: column task_index, pandas index ``task`` (as pandas would write it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    def col(name, pandas_type, numpy_type, metadata=None):
        return {"name": name, "field_name": name, "pandas_type": pandas_type, "numpy_type": numpy_type,
                "metadata": metadata}

    pandas_meta = {"index_columns": ["task"], "column_indexes": [col(None, "unicode", "object", {"encoding": "UTF-8"})],
                   "columns": [col("task_index", "int64", "int64"), col("task", "unicode", "object")],
                   "creator": {"library": "pyarrow", "version": pa.__version__}, "pandas_version": "2.2.3"}
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    pq.write_table(table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)}), path)


def write_lerobot(meta: DemoMeta, episodes: list[Episode], root, fps: float = 20, task: str | None = None,
                  crf: int = 18) -> Path:
    """Write ``episodes`` as a LeRobot v3.0 folder at ``root`` (atomically: replaced only on success).

    One data parquet file and one mp4 per video key hold all episodes. Features:
    ``observation.state (Ds,)``, ``action (A,)``, ``observation.qpos (Dq,)`` only when qpos is not
    the leading part of the state, and ``observation.images.<camera>`` (video) for rgb episodes.
    The final observation of every episode (``state[T]``, ``image[T]``) goes to the episodes table.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..pretrained import atomic_directory
    from .video_io import write_video

    if not episodes:
        raise DataError(f"{meta.path}: no episodes to write")
    root, fps = Path(root), int(fps) if float(fps).is_integer() else float(fps)  # lerobot writes an int
    dq = episodes[0].qpos.shape[1]
    qpos_in_state = all(np.array_equal(ep.qpos, ep.state[:, :dq]) for ep in episodes)
    keys = {"observation.state": [ep.state for ep in episodes], "action": [ep.action for ep in episodes]}
    if not qpos_in_state:
        keys["observation.qpos"] = [ep.qpos for ep in episodes]
    has_images = episodes[0].image is not None
    camera = meta.camera or "camera"
    video_key = f"observation.images.{camera}" if has_images else None
    if has_images and any(ep.image is None for ep in episodes):
        raise DataError(f"{meta.path}: some episodes have images and some do not")
    lengths = np.array([ep.length for ep in episodes])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    n = int(lengths.sum())
    task = task or meta.env_id or "task"

    cols = {k: np.concatenate([a[:L] for a, L in zip(arrs, lengths)]).astype(np.float32) for k, arrs in keys.items()}
    for k, v in cols.items():
        if not np.isfinite(v).all():
            raise DataError(f"{meta.path}: {k} contains NaN or inf; refusing to write {root}")
    frame_index = np.concatenate([np.arange(L) for L in lengths]).astype(np.int64)
    index_cols = {"timestamp": (frame_index / fps).astype(np.float32), "frame_index": frame_index,
                  "episode_index": np.repeat(np.arange(len(episodes)), lengths).astype(np.int64),
                  "index": np.arange(n, dtype=np.int64), "task_index": np.zeros(n, np.int64)}
    features = {k: {"dtype": "float32", "shape": [v.shape[1]],
                    "names": [f"{k.split('.')[-1]}_{i}" for i in range(v.shape[1])]} for k, v in cols.items()}
    if has_images:
        h, w = episodes[0].image.shape[1:3]
        features[video_key] = {"dtype": "video", "shape": [int(h), int(w), 3], "names": ["height", "width", "channels"],
                               "info": {"video.height": int(h), "video.width": int(w), "video.codec": "h264",
                                        "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": fps,
                                        "video.channels": 3, "has_audio": False}}
    features.update({k: {"dtype": d, "shape": [1], "names": None} for k, d in INDEX_FEATURES.items()})

    zeros = np.zeros(len(episodes), np.int64)  # every episode is in chunk 0, file 0
    ep_cols = {"episode_index": np.arange(len(episodes)), "tasks": [[task]] * len(episodes), "length": lengths,
               "data/chunk_index": zeros, "data/file_index": zeros,
               "dataset_from_index": starts, "dataset_to_index": starts + lengths}
    if has_images:
        ep_cols.update({f"videos/{video_key}/chunk_index": zeros, f"videos/{video_key}/file_index": zeros,
                        f"videos/{video_key}/from_timestamp": starts / fps,
                        f"videos/{video_key}/to_timestamp": (starts + lengths) / fps})
    ep_cols.update({"meta/episodes/chunk_index": zeros, "meta/episodes/file_index": zeros})
    for k in cols:
        per_ep = [_stats(a[:L]) for a, L in zip(keys[k], lengths)]
        for s in ("min", "max", "mean", "std", "count"):
            ep_cols[f"stats/{k}/{s}"] = [p[s] for p in per_ep]
    for k, arrs in keys.items():
        if k != "action":
            ep_cols[FINAL + k] = _vector_array(np.stack([a[L] for a, L in zip(arrs, lengths)]).astype(np.float32))
    if has_images:
        ep_cols[FINAL + video_key] = pa.array([np.ascontiguousarray(ep.image[L]).tobytes()
                                               for ep, L in zip(episodes, lengths)], pa.binary())

    stats = {k: _stats(v) for k, v in cols.items()}
    stats.update({k: _stats(v) for k, v in index_cols.items()})
    if has_images:
        stats[video_key] = _stats(np.concatenate([ep.image[:L] for ep, L in zip(episodes, lengths)]), image=True)
    ours = {"env_id": meta.env_id, "obs_mode": meta.obs_mode, "control_mode": meta.control_mode,
            "max_episode_steps": int(meta.max_episode_steps), "env_kwargs": meta.env_kwargs,
            "episode_seeds": list(meta.episode_seeds) if len(meta.episode_seeds) == len(episodes) else [],
            "state_key": "observation.state", "qpos_dims": dq if qpos_in_state else None,
            "qpos_key": None if qpos_in_state else "observation.qpos", "image_key": video_key,
            "camera": meta.camera, "source": meta.path,
            "final_observation": f"meta/episodes columns {FINAL}<key>"}
    info = {"codebase_version": CODEBASE_VERSION, "robot_type": None, "total_episodes": len(episodes),
            "total_frames": n, "total_tasks": 1, "chunks_size": 1000, "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 500, "fps": fps, "splits": {"train": f"0:{len(episodes)}"},
            "data_path": DATA_PATH, "video_path": VIDEO_PATH if has_images else None, "features": features,
            META_KEY: ours}

    with atomic_directory(root) as tmp:
        data_path = tmp / DATA_PATH.format(chunk_index=0, file_index=0)
        data_path.parent.mkdir(parents=True)
        table = {k: _vector_array(v) for k, v in cols.items()}
        table.update({k: pa.array(v) for k, v in index_cols.items()})
        pq.write_table(pa.table(table), data_path)
        if has_images:
            frames = np.concatenate([ep.image[:L] for ep, L in zip(episodes, lengths)])
            write_video(tmp / VIDEO_PATH.format(video_key=video_key, chunk_index=0, file_index=0), frames, fps, crf=crf)
        (tmp / EPISODES_PATH).parent.mkdir(parents=True)
        ep_table = pa.table({k: v if isinstance(v, pa.Array) else pa.array(v) for k, v in ep_cols.items()})
        pq.write_table(ep_table, tmp / EPISODES_PATH)
        _write_tasks(tmp / "meta" / "tasks.parquet", [task])
        (tmp / "meta" / "stats.json").write_text(json.dumps(stats, indent=2))
        (tmp / "meta" / "info.json").write_text(json.dumps(info, indent=2))
    return root


def write_maniskill_h5(meta: DemoMeta, episodes: list[Episode], h5_path) -> Path:
    """Write a ManiSkill trajectory ``<name>.h5`` + ``<name>.json`` that ``read_demos`` reads back exactly.

    State datasets store ``obs (T+1, Ds)`` and an ``env_states/articulations/<robot>``
    ``(T+1, 13 + 2 Dq)`` array whose columns ``13:13+Dq`` are the qpos (the rest zeros), which is
    how ``read_demos`` finds the qpos inside the state. RGB datasets store dict observations:
    ``obs/agent/qpos``, ``obs/extra/state_rest`` (the state after the qpos) and
    ``obs/sensor_data/<camera>/rgb``. Either way the qpos must be the leading state entries.
    """
    import h5py

    h5_path = Path(h5_path)
    if not episodes:
        raise DataError(f"{meta.path}: no episodes to write")
    rgb = meta.obs_mode.startswith("rgb")
    if rgb and episodes[0].image is None:
        raise DataError(f"{meta.path}: obs_mode {meta.obs_mode!r} but the episodes have no images "
                        "(read the LeRobot folder with an image key)")
    dq = episodes[0].qpos.shape[1]
    for i, ep in enumerate(episodes):
        if not np.array_equal(ep.qpos, ep.state[:, :dq]):
            raise DataError(f"{meta.path}: episode {i}: qpos is not the leading {dq} state entries; "
                            "a ManiSkill file locates qpos there (read with qpos_dims or another state key)")
    robot = meta.env_kwargs.get("robot_uids")
    robot = robot if isinstance(robot, str) else "panda"
    camera = meta.camera or "camera"
    seeds = list(meta.episode_seeds) if len(meta.episode_seeds) == len(episodes) else [None] * len(episodes)
    h5_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_h5 = h5_path.with_name(f".{h5_path.name}.tmp-{os.getpid()}")
    tmp_json = h5_path.with_name(f".{h5_path.stem}.json.tmp-{os.getpid()}")
    records = []
    try:
        with h5py.File(tmp_h5, "w") as f:
            for i, ep in enumerate(episodes):
                g = f.create_group(f"traj_{i}")
                g["actions"] = ep.action.astype(np.float32)
                if rgb:
                    g["obs/agent/qpos"] = ep.qpos.astype(np.float32)
                    if ep.state.shape[1] > dq:
                        g["obs/extra/state_rest"] = ep.state[:, dq:].astype(np.float32)
                    g[f"obs/sensor_data/{camera}/rgb"] = ep.image.astype(np.uint8)
                else:
                    g["obs"] = ep.state.astype(np.float32)
                    art = np.zeros((ep.state.shape[0], 13 + 2 * dq), np.float32)
                    art[:, 13:13 + dq] = ep.qpos
                    g[f"env_states/articulations/{robot}"] = art
                rec = {"episode_id": i, "control_mode": meta.control_mode, "elapsed_steps": int(ep.length)}
                if seeds[i] is not None:
                    rec.update(episode_seed=int(seeds[i]), reset_kwargs={"options": None, "seed": int(seeds[i])})
                records.append(rec)
        env_kwargs = {**meta.env_kwargs, "obs_mode": meta.obs_mode, "control_mode": meta.control_mode}
        doc = {"env_info": {"env_id": meta.env_id, "env_kwargs": env_kwargs,
                            "max_episode_steps": int(meta.max_episode_steps)},
               "episodes": records, "source": meta.path}
        tmp_json.write_text(json.dumps(doc, indent=2))
        os.replace(tmp_h5, h5_path)
        os.replace(tmp_json, h5_path.with_suffix(".json"))
    finally:
        for t in (tmp_h5, tmp_json):
            if t.exists():
                t.unlink()
    return h5_path
