"""Video: real files through av/decord, a tiny VAE really trained, the latent predictor, bad input."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from a2a_temporal.backbone import TransformerConfig
from a2a_temporal.data.video_folder import load_folder, split_files, list_videos
from a2a_temporal.data.video_io import read_video, write_video
from a2a_temporal.errors import DataError
from a2a_temporal.flow import ObjectiveConfig
from a2a_temporal.heads.video import LatentVideoFlow, VAEConfig, VideoFlowConfig, VideoVAE
from a2a_temporal.heads.video.data import FrameDataset, LatentWindows, encode_clips

from conftest import run_tool

ROOT = Path(__file__).resolve().parents[1]


def moving_square(T=12, size=32, seed=0):
    """A square moving right over a vertical gradient: smooth content that codecs keep well."""
    rng = np.random.default_rng(seed)
    y0 = int(rng.integers(4, size - 12))
    frames = np.zeros((T, size, size, 3), np.uint8)
    frames[..., 2] = np.linspace(40, 200, size, dtype=np.uint8)[:, None]
    for t in range(T):
        x = 2 + 2 * t % (size - 10)
        frames[t, y0:y0 + 8, x:x + 8] = (230, 60, 40)
    return frames


@pytest.fixture(scope="module")
def video_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    for i in range(4):
        frames = moving_square(seed=i)
        write_video(d / f"clip_{i}.mp4", frames, fps=10)
        np.save(d / f"clip_{i}.actions.npy", np.full((len(frames) - 1, 2), [1.0, 0.0], np.float32))
    return d


def test_av_write_decord_read_roundtrip(tmp_path):
    frames = moving_square(T=15, size=48)
    path = write_video(tmp_path / "a.mp4", frames, fps=10)
    back = read_video(path)
    assert back.shape == frames.shape and back.dtype == np.uint8
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 3.0
    small = read_video(path, size=24)
    assert small.shape == (15, 24, 24, 3)
    assert not list(tmp_path.glob(".*tmp*"))  # written atomically


def test_folder_split_is_by_file(video_dir):
    files = list_videos(video_dir)
    train, val = split_files(files, "train", 2), split_files(files, "val", 2)
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(files)
    clips = load_folder(video_dir, 32, "train", val_every=2, frame_stride=2)
    assert all(c.frames.shape == (6, 32, 32, 3) for c in clips)  # 12 frames -> every 2nd, 11 // 2 + 1
    assert all(c.actions.shape == (5, 4) for c in clips)  # two 2-D actions per kept frame step


def test_several_folders_are_split_each_on_its_own(video_dir, tmp_path):
    """Tasks read together keep the held-out files they have alone (no file moves across the split)."""
    other = tmp_path / "other"
    other.mkdir()
    for i in range(3):
        write_video(other / f"b_{i}.mp4", moving_square(seed=10 + i), fps=10)
        np.save(other / f"b_{i}.actions.npy", np.zeros((11, 2), np.float32))
    both = f"{video_dir},{other}"
    for split in ("train", "val"):
        alone = [c.path for c in load_folder(video_dir, 32, split, 2)] + [c.path for c in load_folder(other, 32, split, 2)]
        assert [c.path for c in load_folder(both, 32, split, 2)] == alone
    # 4 files -> every 2nd held out (2); 3 files -> 1
    train = [c.path for c in load_folder(both, 32, "train", 2)]
    assert [c.path for c in load_folder(both, 32, "train", 2, max_files=2)] == [train[0], train[-1]]  # evenly spaced
    assert len(load_folder(both, 32, "val", 2)) == 2 + 1
    with pytest.raises(DataError, match="data.root is empty"):
        load_folder(" , ", 32, "train", 2)
    with pytest.raises(DataError, match="missing_folder: video folder not found"):
        load_folder(f"{video_dir},{tmp_path / 'missing_folder'}", 32, "train", 2)


def tiny_vae():
    return VideoVAE(VAEConfig(image_size=32, block_out_channels=(16, 32), norm_num_groups=8, latent_channels=4))


def test_tiny_vae_trains_and_latents_have_documented_shape_and_scale(video_dir):
    torch.manual_seed(0)
    clips = load_folder(video_dir, 32, "all", frame_stride=1, with_actions=False)
    data = FrameDataset(clips)
    vae = tiny_vae()
    opt = torch.optim.AdamW(vae.parameters(), lr=2e-3)
    batch = data.__getitems__(list(range(16)))
    losses = []
    for _ in range(12):
        loss, info = vae(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses
    scale = vae.fit_scaling_factor(data.frames)
    z = vae.encode(data.frames)
    assert z.shape == (len(data), *vae.config.latent_shape) == (len(data), 4, 16, 16)
    assert scale == vae.config.scaling_factor and abs(z.std().item() - 1.0) < 0.05
    assert vae.decode(z[:3]).shape == (3, 32, 32, 3)


def tiny_video_model(objective="a2a", use_actions=True):
    cfg = VideoFlowConfig(vae=VAEConfig(image_size=32, block_out_channels=(16, 32), norm_num_groups=8),
                          context=2, patch=4, use_actions=use_actions, action_dim=2 if use_actions else 0,
                          objective=ObjectiveConfig(name=objective),
                          backbone=TransformerConfig(preset="tiny", width=32, depth=1))
    m = LatentVideoFlow(cfg)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in m.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return m.eval()


@pytest.mark.parametrize("objective", ["a2a", "flow", "ddim", "regression"])
def test_latent_windows_train_step(video_dir, objective):
    m = tiny_video_model(objective)
    clips = load_folder(video_dir, 32, "all")
    lat = encode_clips(m.vae, clips, progress=False)
    w = LatentWindows(lat, context=2, actions=[c.actions for c in clips])
    assert len(w) == sum(len(c.frames) - 1 for c in clips)
    b = w.__getitems__([0, 5, 20])
    assert b["context"].shape == (3, 2, 4, 16, 16) and b["target"].shape == (3, 4, 16, 16) and b["action"].shape == (3, 2)
    assert torch.equal(b["context"][0, 0], lat[0][0]) and torch.equal(b["context"][0, 1], lat[0][0])  # edge pad
    m.train()
    loss, _ = m(b)
    loss.backward()
    assert torch.isfinite(loss) and m.net.x_in.weight.grad is not None


def test_predict_next_rollout_shapes_and_reload(tmp_path):
    m = tiny_video_model()
    frames = torch.from_numpy(moving_square(T=4))[None].repeat(2, 1, 1, 1, 1)  # (2, 4, 32, 32, 3)
    acts = torch.ones(2, 3, 2)
    nxt = m.predict_next(frames[:, :2], acts[:, 0])
    assert nxt.shape == (2, 32, 32, 3) and nxt.dtype == torch.uint8
    roll = m.rollout(frames[:, :2], 3, acts)
    assert roll.shape == (2, 3, 32, 32, 3)
    assert torch.equal(roll[:, 0], nxt)
    m.save_pretrained(tmp_path / "m")
    m2 = LatentVideoFlow.from_pretrained(tmp_path / "m")
    assert torch.equal(m2.rollout(frames[:, :2], 3, acts), roll)
    with pytest.raises(ValueError, match="action-conditioned"):
        m.rollout(frames[:, :2], 2)


def test_bad_videos_are_clear_errors(tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    with pytest.raises(DataError, match="corrupt.mp4: cannot decode"):
        read_video(corrupt)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty.mp4: empty video file"):
        read_video(empty)
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    (nothing / "notes.txt").write_text("no videos here")
    with pytest.raises(DataError, match="nothing: no video files"):
        load_folder(nothing, 32)
    vae = tiny_vae()
    with pytest.raises(DataError, match="clip.mp4: frames of shape \\(48, 48, 3\\) but the VAE was trained on 32x32"):
        vae.encode(torch.zeros(2, 48, 48, 3, dtype=torch.uint8), "clip.mp4")


@pytest.mark.slow
def test_video_tools_end_to_end(demos, tmp_path):
    """render_videos -> train_vae -> train_video -> predict_video on the real simulator's frames."""
    vids = tmp_path / "videos"
    r = run_tool("render_videos.py", "--demos", demos, "--out", vids, "--max-episodes", 3, "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    mp4s = sorted(vids.glob("*.mp4"))
    assert len(mp4s) == 3 and read_video(mp4s[0]).shape[1:] == (64, 64, 3)
    acts = np.load(mp4s[0].with_name(mp4s[0].stem + ".actions.npy"))
    assert acts.shape == (read_video(mp4s[0]).shape[0] - 1, 4)

    r = run_tool("train_vae.py", "--config", ROOT / "configs/video/vae_64.yaml", "--output-dir", tmp_path / "vae",
                 f"--data.root={vids}", "--data.val_every=3", "--train.iterations=4", "--train.batch_size=8",
                 "--train.eval_every=2", "--train.log_every=2", "--val_frames=16", "--train.mixed_precision=bf16",
                 "--vae.block_out_channels=[16,32,32]", "--vae.norm_num_groups=8")
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((tmp_path / "vae" / "vae_summary.json").read_text())
    assert summary["latent_shape"] == [4, 16, 16] and abs(summary["latent_std_after_scaling"] - 1) < 0.2
    assert (tmp_path / "vae" / "vae_reconstructions.png").is_file()
    # bf16 autocast trains fp32 weights; every evaluation records the training time so far, so the
    # curve tool can report the time to a reconstruction PSNR.
    from safetensors.torch import load_file
    assert {t.dtype for t in load_file(str(tmp_path / "vae" / "vae" / "model.safetensors")).values()} == {torch.float32}
    r = run_tool("learning_curves.py", "--run", f"vae={tmp_path / 'vae'}", "--x", "train_cpu_s", "--target", -1000,
                 "--out", tmp_path / "curve.png")
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "curve.json").read_text())
    pts = res["curves"]["vae"]
    assert [p["step"] for p in pts] == [2, 4] and 0 < pts[0]["train_cpu_s"] < pts[1]["train_cpu_s"]
    assert res["summary"]["vae"]["reaches_target"] == pts[0]

    r = run_tool("train_video.py", "--config", ROOT / "configs/video/pickcube_64_actions.yaml",
                 "--output-dir", tmp_path / "pred", "--vae-path", tmp_path / "vae", f"--data.root={vids}",
                 "--data.val_every=3", "--data.frame_stride=2", "--train.iterations=4", "--train.batch_size=8",
                 "--train.log_every=2", "--train.eval_every=0", "--eval.windows=8",
                 "--video.backbone.width=32", "--video.backbone.depth=1")
    assert r.returncode == 0, r.stderr[-3000:]
    assert list((tmp_path / "vae" / "vae" / "latent_cache").glob("latents-*.safetensors"))

    out = tmp_path / "pred.mp4"
    r = run_tool("predict_video.py", "--checkpoint", tmp_path / "pred", "--video", mp4s[-1], "--frames", 4,
                 "--steps", 1, "--out", out, "--json", tmp_path / "pred.json")
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "pred.json").read_text())
    assert len(res["psnr"]) == len(res["copy_last_psnr"]) == len(res["ssim"]) == 4
    side = read_video(out)
    assert side.shape[0] == 4 and side.shape[2] == 3 * 64 + 4  # truth | prediction | error
    assert out.with_suffix(".gif").is_file()

    # benchmark: every model scored on the held-out split in one run, curves + throughput
    bench = tmp_path / "bench" / "results.json"
    r = run_tool("benchmark_video.py", "--videos", vids, "--val-every", 3, "--model", f"one={tmp_path / 'pred'}:1",
                 "--model", f"two={tmp_path / 'pred'}:2", "--frames", 3, "--threads", 1, "--json", bench)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(bench.read_text())
    assert res["held_out_videos"] == 1 and set(res["models"]) == {"one", "two"}
    for m in res["models"].values():
        assert len(m["rollout_psnr"]) == 3 and m["frames_per_second"] > 0
        assert np.isfinite([m["next_frame_psnr"], m["true_latent_psnr"], m["next_frame_ssim"]]).all()
        assert [t["steps"] for t in m["throughput"]] == [1, 10]
        assert all(t["latent_only_fps"] > 0 and t["with_vae_fps"] > 0 for t in m["throughput"])
    assert len(res["copy_last_rollout_psnr"]) == 3 and bench.with_suffix(".png").is_file()

    # A video at a size the VAE was not trained for is refused, naming the file.
    big = tmp_path / "big.mp4"
    write_video(big, np.zeros((6, 96, 96, 3), np.uint8))
    r = run_tool("predict_video.py", "--checkpoint", tmp_path / "pred", "--video", big, "--frames", 2,
                 "--out", tmp_path / "x.mp4")
    assert r.returncode == 2 and "big.mp4" in r.stderr and "64x64" in r.stderr


def test_train_seed_fixes_the_initial_weights(video_dir, tmp_path):
    """Two runs with one train.seed train the same weights, another seed different ones: the seed
    reaches the model's initialisation, not only the batch order."""
    from safetensors.torch import load_file

    def weights(name, seed):
        r = run_tool("train_vae.py", "--config", ROOT / "configs/video/vae_64.yaml", "--output-dir", tmp_path / name,
                     f"--data.root={video_dir}", "--data.size=32", "--vae.image_size=32", "--data.val_every=2",
                     "--train.iterations=1", "--train.batch_size=4", "--train.threads=1", "--train.eval_every=0",
                     "--val_frames=4", "--vae.block_out_channels=[8,8]", "--vae.norm_num_groups=4",
                     f"--train.seed={seed}")
        assert r.returncode == 0, r.stderr[-3000:]
        return load_file(str(tmp_path / name / "vae" / "model.safetensors"))

    a, b, c = weights("a", 0), weights("b", 0), weights("c", 1)
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
