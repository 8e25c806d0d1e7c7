"""LeRobot v3.0 folders: round trips with ManiSkill files, the on-disk layout, one-line errors, the CLI."""
import io
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from a2a_temporal.data.lerobot import read_lerobot, write_lerobot, write_maniskill_h5
from a2a_temporal.data.maniskill import DemoMeta, Episode, read_demos
from a2a_temporal.data.video_io import write_video
from a2a_temporal.errors import DataError

from conftest import run_tool

EPISODES = "meta/episodes/chunk-000/file-000.parquet"
DATA = "data/chunk-000/file-000.parquet"
VIDEO_KEY = "observation.images.base_camera"


def assert_same(m1, e1, m2, e2, images_exact=True):
    assert (m1.env_id, m1.control_mode, m1.obs_mode, m1.max_episode_steps, m1.episode_seeds, m1.qpos_dim) == \
        (m2.env_id, m2.control_mode, m2.obs_mode, m2.max_episode_steps, m2.episode_seeds, m2.qpos_dim)
    assert len(e1) == len(e2)
    for a, b in zip(e1, e2):
        for k in ("state", "qpos", "action"):
            x, y = getattr(a, k), getattr(b, k)
            assert x.dtype == y.dtype == np.float32 and np.array_equal(x, y), k
        assert (a.image is None) == (b.image is None)
        if a.image is not None:
            assert a.image.shape == b.image.shape and a.image.dtype == b.image.dtype == np.uint8
            diff = np.abs(a.image.astype(int) - b.image.astype(int)).max()
            assert diff == 0 if images_exact else diff <= 3  # H.264 at crf 18 on flat colours


def check_layout(root: Path, episodes):
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["total_episodes"] == len(episodes) and info["total_frames"] == sum(e.length for e in episodes)
    for k in ("observation.state", "action", "timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert {"dtype", "shape", "names"} <= set(info["features"][k]), k
    rows = pq.read_table(root / EPISODES).to_pylist()
    assert [r["episode_index"] for r in rows] == list(range(len(episodes)))
    assert [r["length"] for r in rows] == [e.length for e in episodes]
    assert all(r["dataset_to_index"] - r["dataset_from_index"] == r["length"] for r in rows)
    video_keys = [k for k, f in info["features"].items() if f["dtype"] == "video"]
    for r in rows:
        data = root / info["data_path"].format(chunk_index=r["data/chunk_index"], file_index=r["data/file_index"])
        assert data.is_file()
        table = pq.read_table(data)
        ep = np.asarray(table.column("episode_index"))
        assert (ep == r["episode_index"]).sum() == r["length"]
        assert np.array_equal(np.asarray(table.column("index"))[ep == r["episode_index"]],
                              np.arange(r["dataset_from_index"], r["dataset_to_index"]))
        for k in video_keys:
            assert (root / info["video_path"].format(video_key=k, chunk_index=r[f"videos/{k}/chunk_index"],
                                                     file_index=r[f"videos/{k}/file_index"])).is_file()
            duration = r[f"videos/{k}/to_timestamp"] - r[f"videos/{k}/from_timestamp"]
            assert duration == pytest.approx(r["length"] / info["fps"])
    tasks = pq.read_table(root / "meta/tasks.parquet")
    assert tasks.column_names == ["task_index", "task"] and b"pandas" in tasks.schema.metadata
    stats = json.loads((root / "meta/stats.json").read_text())
    for k in ("observation.state", "action", *video_keys):
        assert {"mean", "std", "min", "max"} <= set(stats[k]), k
    return info


def make_episodes(lengths=(5, 7), rgb=True):
    """Tiny episodes: 6-d state whose first 3 entries are qpos, 2-d actions, 16x16 frames of one grey level."""
    rng = np.random.default_rng(0)
    episodes = []
    for T in lengths:
        state = rng.normal(size=(T + 1, 6)).astype(np.float32)
        image = np.broadcast_to((np.arange(T + 1, dtype=np.uint8) * 30)[:, None, None, None], (T + 1, 16, 16, 3))
        action = rng.normal(size=(T, 2)).astype(np.float32)
        episodes.append(Episode(state=state, qpos=state[:, :3].copy(), action=action,
                                image=image.copy() if rgb else None))
    meta = DemoMeta(path="synthetic", env_id="Toy-v0", obs_mode="rgb" if rgb else "state",
                    control_mode="pd_joint_delta_pos", max_episode_steps=10, num_episodes=len(lengths),
                    state_dim=6, qpos_dim=3, action_dim=2, camera="base_camera" if rgb else None,
                    image_size=16 if rgb else None, episode_seeds=[3, 4, 5][:len(lengths)])
    return meta, episodes


def synthetic(tmp_path, rgb=True):
    meta, episodes = make_episodes(rgb=rgb)
    return meta, episodes, write_lerobot(meta, episodes, tmp_path / "ds", fps=10)


def one_line_error(match, fn, *args, **kwargs):
    with pytest.raises(DataError, match=match) as e:
        fn(*args, **kwargs)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


# ---------------------------------------------------------------------------------------------- round trips

@pytest.mark.slow
def test_maniskill_lerobot_maniskill_round_trip(demos, tmp_path):
    m0, e0 = read_demos(demos)
    root = write_lerobot(m0, e0, tmp_path / "push", fps=20)
    info = check_layout(root, e0)
    assert info["fps"] == 20 and info["video_path"] is None
    assert info["a2a_temporal"]["qpos_dims"] == m0.qpos_dim and info["a2a_temporal"]["env_id"] == "PushCube-v1"
    m1, e1 = read_lerobot(root)
    assert m1.path == str(root) and m1.env_kwargs == m0.env_kwargs and len(m1.episode_seeds) == 3
    assert_same(m0, e0, m1, e1)  # the final observation (index T) too: it is stored
    m2, e2 = read_demos(write_maniskill_h5(m1, e1, tmp_path / "back" / "push.h5"))
    assert_same(m0, e0, m2, e2)
    assert (m2.env_kwargs["obs_mode"], m2.env_kwargs["control_mode"]) == ("state", m0.control_mode)
    m3, e3 = read_lerobot(root, max_episodes=2)
    assert m3.num_episodes == 2 and m3.episode_seeds == m0.episode_seeds[:2]


def test_rgb_round_trip_and_layout(tmp_path):
    meta, episodes, root = synthetic(tmp_path)
    info = check_layout(root, episodes)
    assert info["features"][VIDEO_KEY]["shape"] == [16, 16, 3]
    m1, e1 = read_lerobot(root)  # our own rgb folder: the stored image key is the default
    assert (m1.camera, m1.image_size, m1.obs_mode) == ("base_camera", 16, "rgb")
    assert_same(meta, episodes, m1, e1, images_exact=False)
    m2, e2 = read_demos(write_maniskill_h5(m1, e1, tmp_path / "rgb.h5"))
    assert_same(m1, e1, m2, e2)


def test_foreign_dataset_defaults(tmp_path):
    """No a2a_temporal metadata: env_id "", obs_mode from the image key, qpos from qpos_dims / the whole state."""
    _, episodes, root = synthetic(tmp_path)
    info_path = root / "meta/info.json"
    info = json.loads(info_path.read_text())
    del info["a2a_temporal"]
    info["control_mode"] = "pd_joint_pos"
    info_path.write_text(json.dumps(info))
    table = pq.read_table(root / EPISODES)
    pq.write_table(table.drop([c for c in table.column_names if c.startswith("a2a_temporal/")]), root / EPISODES)
    m, e = read_lerobot(root)
    assert (m.env_id, m.obs_mode, m.control_mode, m.episode_seeds) == ("", "state", "pd_joint_pos", [])
    assert m.max_episode_steps == 7  # the longest episode
    assert e[0].image is None and np.array_equal(e[0].qpos, e[0].state)
    assert np.array_equal(e[0].state[-1], e[0].state[-2])  # no stored final observation: the last frame repeated
    m, e = read_lerobot(root, image_key=VIDEO_KEY, qpos_dims=3)
    assert (m.obs_mode, m.camera, m.qpos_dim) == ("rgb", "base_camera", 3) and e[1].image.shape == (8, 16, 16, 3)


def test_image_feature_in_parquet(tmp_path):
    """A foreign ``image`` feature (PNG bytes inside the data parquet) is decoded losslessly."""
    from PIL import Image

    _, episodes, root = synthetic(tmp_path, rgb=False)
    frames = np.concatenate([make_episodes()[1][i].image[:e.length] for i, e in enumerate(episodes)])

    def png(frame):
        buf = io.BytesIO()
        Image.fromarray(frame).save(buf, format="PNG")
        return {"bytes": buf.getvalue(), "path": None}

    table = pq.read_table(root / DATA)
    pq.write_table(table.append_column("observation.images.top", pa.array([png(f) for f in frames])), root / DATA)
    info = json.loads((root / "meta/info.json").read_text())
    info["features"]["observation.images.top"] = {"dtype": "image", "shape": [16, 16, 3], "names": None}
    (root / "meta/info.json").write_text(json.dumps(info))
    m, e = read_lerobot(root, image_key="observation.images.top")
    assert m.camera == "top" and np.array_equal(e[1].image[:-1], frames[5:])
    assert np.array_equal(e[1].image[-1], e[1].image[-2])  # no stored final frame: the last one repeated


def test_write_is_atomic(tmp_path, monkeypatch):
    """An interrupted write leaves the previous folder untouched and no temporary directory behind."""
    _, _, root = synthetic(tmp_path, rgb=False)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    import a2a_temporal.data.video_io as video_io
    monkeypatch.setattr(video_io, "write_video", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_lerobot(*make_episodes(rgb=True), root)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]
    assert read_lerobot(root)[0].obs_mode == "state"


# ---------------------------------------------------------------------------------------------- errors

def test_bad_info_and_keys(tmp_path):
    one_line_error(r"meta/info.json: not found", read_lerobot, tmp_path / "nothing")
    _, _, root = synthetic(tmp_path)
    msg = one_line_error("observation.statez", read_lerobot, root, state_key="observation.statez")
    assert "available: action, episode_index" in msg and "observation.state," in msg
    one_line_error(r"features has no 'act'.*available: ", read_lerobot, root, action_key="act")
    one_line_error(r"features has no 'observation.images.wrist' \(the image key\)", read_lerobot, root,
                   image_key="observation.images.wrist")
    info_path = root / "meta/info.json"
    info = json.loads(info_path.read_text())
    info_path.write_text(json.dumps({**info, "codebase_version": "v2.1"}))
    one_line_error(r"info.json: codebase_version is 'v2.1'; expected 'v3.0'", read_lerobot, root)


def test_length_mismatch_and_missing_data(tmp_path):
    _, _, root = synthetic(tmp_path)
    table = pq.read_table(root / EPISODES)
    lengths = table.column("length").to_pylist()
    lengths[1] += 2
    pq.write_table(table.set_column(table.column_names.index("length"), "length", pa.array(lengths)), root / EPISODES)
    one_line_error(r"file-000.parquet: episode 1 has 7 frames but .*episodes.* says length=9", read_lerobot, root)
    (root / DATA).unlink()
    one_line_error(r"data/chunk-000/file-000.parquet: data file missing \(needed by episode 0", read_lerobot, root)


def test_nan_action_names_episode_and_frame(tmp_path):
    _, _, root = synthetic(tmp_path, rgb=False)
    table = pq.read_table(root / DATA)
    action = np.stack(table.column("action").to_pylist()).astype(np.float32)
    action[5 + 3, 1] = np.nan  # episode 1, frame 3
    col = pa.FixedSizeListArray.from_arrays(pa.array(action.reshape(-1)), 2)
    pq.write_table(table.set_column(table.column_names.index("action"), "action", col), root / DATA)
    one_line_error(r"episode 1 action 'action' contains NaN or inf \(first at frame 3\)", read_lerobot, root)


def test_missing_and_truncated_video(tmp_path):
    meta, episodes, root = synthetic(tmp_path)
    video = root / f"videos/{VIDEO_KEY}/chunk-000/file-000.mp4"
    frames = np.concatenate([e.image[:e.length] for e in episodes])  # 5 + 7 frames
    write_video(video, frames[:9], fps=10)  # episode 1 needs frames 5..11
    msg = one_line_error(r"file-000.mp4: has 9 frames but episode 1 needs frames 5..11", read_lerobot, root)
    assert "truncated" in msg
    video.unlink()
    one_line_error(rf"file-000.mp4: video file missing \(needed by episode 0, key '{VIDEO_KEY}'\)", read_lerobot, root)


# ---------------------------------------------------------------------------------------------- the tool

@pytest.mark.slow
def test_cli_both_directions(demos, tmp_path):
    out = tmp_path / "lr"
    r = run_tool("convert_dataset.py", "--to", "lerobot", demos, "--out", out, "--fps", 15)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["episodes"] == 3 and summary["to"] == "lerobot"
    assert json.loads((tmp_path / "lr.summary.json").read_text()) == summary
    assert json.loads((out / "meta/info.json").read_text())["fps"] == 15
    h5 = tmp_path / "back" / "push.h5"
    r = run_tool("convert_dataset.py", "--to", "maniskill", out, "--out", h5, "--state-key", "observation.state",
                 "--action-key", "action")
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.strip().splitlines()[-1])["frames"] == summary["frames"]
    assert h5.with_suffix(".json").is_file() and h5.with_name("push.h5.summary.json").is_file()
    m0, e0 = read_demos(demos)
    m1, e1 = read_demos(h5)
    assert_same(m0, e0, m1, e1)


def test_cli_help_and_bad_input(tmp_path):
    r = run_tool("convert_dataset.py", "--help")
    assert r.returncode == 0 and "--to" in r.stdout and "--image-key" in r.stdout
    for args in (["--to", "maniskill", tmp_path / "missing", "--out", tmp_path / "x.h5"],
                 ["--to", "lerobot", tmp_path / "missing.h5", "--out", tmp_path / "x"]):
        r = run_tool("convert_dataset.py", *args)
        assert r.returncode != 0
        assert r.stderr.strip().splitlines()[-1].startswith("error: "), r.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.h5").exists()
