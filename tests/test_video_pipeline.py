"""Video baselines that isolate the source, latent-only rollouts, learning curves and the
folder pipeline, on small folders of real video files written by av and read by decord."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from a2a_temporal.backbone import TransformerConfig
from a2a_temporal.commands.benchmark_video import teacher_forced
from a2a_temporal.data.video_folder import load_folder
from a2a_temporal.data.video_io import write_video
from a2a_temporal.data.video_probe import probe_folder
from a2a_temporal.errors import DataError
from a2a_temporal.flow import ObjectiveConfig, build_objective
from a2a_temporal.heads.video import LatentVideoFlow, VAEConfig, VideoFlowConfig
from a2a_temporal.heads.video.data import LatentWindows, encode_clips

from conftest import run_tool


def sliding_square(T, size=32, speed=1, seed=0):
    """A square sliding right by ``speed`` px per frame over a vertical gradient."""
    rng = np.random.default_rng(seed)
    y0 = int(rng.integers(2, size - 12))
    frames = np.zeros((T, size, size, 3), np.uint8)
    frames[..., 2] = np.linspace(40, 200, size, dtype=np.uint8)[:, None]
    for t in range(T):
        x = (2 + speed * t) % (size - 10)
        frames[t, y0:y0 + 10, x:x + 10] = (230, 60, 40)
    return frames


def write_folder(d: Path, n=4, T=12, size=32, speed=1) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        write_video(d / f"clip_{i}.mp4", sliding_square(T, size, speed, seed=i), fps=10)
    return d


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("slide") / "videos")


def video_model(objective="a2a", residual=False, decode_mode="residual"):
    cfg = VideoFlowConfig(vae=VAEConfig(image_size=32, block_out_channels=(16, 32), norm_num_groups=8),
                          context=2, patch=4, decode_mode=decode_mode,
                          objective=ObjectiveConfig(name=objective, regression_residual=residual),
                          backbone=TransformerConfig(preset="tiny", width=32, depth=1))
    return LatentVideoFlow(cfg).eval()


@pytest.mark.parametrize("objective,residual", [("a2a", False), ("regression", True)])
def test_zero_velocity_returns_the_last_frame_and_equals_copy_last(folder, objective, residual):
    m = video_model(objective, residual)
    clips = load_folder(folder, 32, "all", with_actions=False)
    ctx = torch.from_numpy(clips[0].frames[:2])[None]
    lat = m.encode_frames(ctx)
    with torch.no_grad():  # the backbone is zero at initialisation: the change it predicts is zero
        assert torch.equal(m.net(m.tokens(lat[:, -1]), torch.zeros(1), m.condition(lat, None)),
                           torch.zeros_like(m.tokens(lat[:, -1])))
    roll = m.rollout(ctx, 3)
    assert torch.equal(roll, ctx[:, -1:].expand(1, 3, 32, 32, 3))  # exactly the last frame, every step
    tf = teacher_forced(m, clips, steps=1)
    assert tf["psnr"] == tf["copy_last_psnr"]  # the tools' copy-last baseline is this model
    assert tf["per_video_gain"] == [0.0] * len(clips) and tf["gain_ci95"] == [0.0, 0.0]
    direct = video_model(objective, residual, decode_mode="direct")  # direct decoding pays the VAE's error
    direct.vae.load_state_dict(m.vae.state_dict())
    assert not torch.equal(direct.rollout(ctx, 1)[:, 0], ctx[:, -1])


def test_regression_with_and_without_the_residual_parameterisation():
    net = lambda x, t, c: torch.zeros_like(x)  # noqa: E731
    x0, x1 = torch.randn(4, 3, 5), torch.randn(4, 3, 5)
    plain = build_objective(ObjectiveConfig(name="regression"))
    res = build_objective(ObjectiveConfig(name="regression", regression_residual=True))
    assert not plain.uses_source and res.uses_source
    assert torch.equal(plain.sample(net, x0), torch.zeros_like(x0))
    assert torch.equal(res.sample(net, x0), x0)  # starts as "copy the source"
    assert torch.allclose(res.loss(net, x0, x1)[0], ((x1 - x0) ** 2).mean())
    with pytest.raises(ValueError, match="regression_residual=true applies to objective.name=regression"):
        ObjectiveConfig(name="a2a", regression_residual=True)


def test_latent_only_rollout_matches_the_decoded_one(folder):
    m = video_model()
    torch.manual_seed(0)
    with torch.no_grad():
        for p in m.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    ctx = torch.from_numpy(load_folder(folder, 32, "all", with_actions=False)[1].frames[:2])[None]
    z = m.rollout_latents(m.encode_frames(ctx), 4, steps=2)
    assert z.shape == (1, 4, 4, 16, 16)
    frames = m.rollout(ctx, 4, steps=2)
    base = m.residual_base(m.encode_frames(ctx)[:, -1], ctx[:, -1])
    # the same numbers up to float rounding: the rollout decodes its frames in one batch, here one
    # frame alone, and CPU kernels may sum in another order at another batch size or thread count
    torch.testing.assert_close(frames[0, 2], m.decode_latents(z[:, 2], base)[0], atol=1e-5, rtol=1e-5)
    assert not torch.equal(frames[0, 0], ctx[0, -1])  # a perturbed model does predict a change


def test_probe_picks_size_and_stride_from_the_data(tmp_path):
    slow = probe_folder(write_folder(tmp_path / "slow", T=20, size=48, speed=1), context=2, min_change=4.0)
    fast = probe_folder(write_folder(tmp_path / "fast", T=20, size=48, speed=5), context=2, min_change=4.0)
    assert slow["size"] == fast["size"] == 32  # 48 px frames: the largest offered size not above them
    assert slow["vae_block_out_channels"] == [32, 64]
    for p in (slow, fast):  # the chosen stride is the smallest whose measured change reaches the threshold
        curve = {int(k): v for k, v in p["mean_change_by_stride"].items()}
        reaching = [s for s, c in sorted(curve.items()) if c >= 4.0]
        assert p["frame_stride"] == (reaching[0] if reaching else max(curve))
    assert fast["frame_stride"] < slow["frame_stride"]
    big = probe_folder(write_folder(tmp_path / "big", n=2, T=8, size=80, speed=3), context=2, max_size=64)
    assert big["size"] == 64 and big["vae_block_out_channels"] == [32, 64, 64]


def test_probe_refuses_short_videos_and_single_files(tmp_path):
    d = write_folder(tmp_path / "short", n=3, T=12)
    write_video(d / "tiny.mp4", sliding_square(3), fps=10)
    with pytest.raises(DataError, match=r"tiny.mp4: 3 frames, too short for a context of 2 frames plus 2"):
        probe_folder(d, context=2)
    one = write_folder(tmp_path / "one", n=1)
    with pytest.raises(DataError, match="at least 2 are needed"):
        probe_folder(one)
    r = run_tool("video_pipeline.py", "--videos", d, "--output-dir", tmp_path / "out")
    assert r.returncode == 2 and "tiny.mp4" in r.stderr and not (tmp_path / "out" / "vae").exists()


@pytest.mark.slow
def test_folder_pipeline_end_to_end(tmp_path):
    """probe -> VAE -> predictor (curve from iteration 0) -> held-out report with a verdict."""
    videos = write_folder(tmp_path / "videos", n=4, T=12, speed=2)
    new = tmp_path / "new"  # a second folder of unseen videos: the verdict rests on all of its files
    new.mkdir()
    for i in range(2):
        write_video(new / f"new_{i}.mp4", sliding_square(12, 32, 2, seed=10 + i), fps=10)
    out = tmp_path / "run"
    args = ["--videos", videos, "--output-dir", out, "--vae-iterations", 4, "--iterations", 4, "--evals", 2,
            "--threads", 1, "--baselines", "regression_residual", "--vae-precision", "bf16",
            "--predictor-augment", "colour", "--augment-copies", 2, "--test-videos", new]
    r = run_tool("video_pipeline.py", *args)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((out / "pipeline.json").read_text())
    vae_cmd = [c for c in res["commands"] if "train_vae.py" in str(c)]
    assert len(vae_cmd) == 1 and "--train.mixed_precision=bf16" in str(vae_cmd[0])
    assert json.loads((out / "vae" / "run_config.json").read_text())["train"]["mixed_precision"] == "bf16"
    # every predictor (a2a and the baseline) trains on the 3 training videos plus 2 re-coloured copies of each
    for run in (out / "predictor", out / "baselines" / "regression_residual"):
        rc = json.loads((run / "run_config.json").read_text())
        assert (rc["augment"], rc["augment_copies"]) == ("colour", 2)
    assert "3 train + 6 augmented copies" in r.stdout and res["predictor_augment"] == "colour"
    assert res["probe"]["size"] == 32 and res["probe"]["val_every"] == 4 and res["heldout_split"]["videos"] == 1
    assert res["verdict"] in ("learned", "not shown", "no better than copy-last") and len(res["commands"]) == 7
    lo, hi = res["heldout_split"]["gain_ci95"]
    assert lo == res["heldout_split"]["video_gain_db"] == hi  # one held-out video: the interval is that video's gain
    # the verdict rests on the 2 files of the test folder, scored as the held-out split is
    test = json.loads((out / "report" / "test_files.json").read_text())
    assert test["scored_videos"] == res["held_out_videos"] == 2 and res["test_videos"] == str(new)
    assert res["video_gain_db"] == test["models"]["a2a"]["video_gain_db"] and len(test["models"]["a2a"]["per_video_gain"]) == 2
    assert res["rollout_psnr"] == test["models"]["a2a"]["rollout_psnr"]
    assert res["artifacts"]["rollout_png"] == str(out / "report" / "test_files.png") and Path(res["artifacts"]["rollout_png"]).is_file()
    lo, hi = res["gain_ci95"]
    assert res["verdict"] == ("no better than copy-last" if res["video_gain_db"] < 0.5 else "learned" if lo > 0 else "not shown")
    assert "too few to trust" in res["why"] and "2 held-out videos" in res["why"]
    assert set(res["baselines"]) == {"regression_residual"}
    # the memorisation check scores the training files the way the held-out ones are scored: per video
    train = json.loads((out / "report" / "train_files.json").read_text())
    assert train["split"] == "train" and train["scored_videos"] == res["train_files_scored"] == 3
    assert res["train_files_gain_db"] == train["models"]["a2a"]["video_gain_db"]
    assert len(train["models"]["a2a"]["per_video_gain"]) == 3
    curves = json.loads((out / "report" / "gain_over_copy_last.json").read_text())["curves"]
    for name in ("a2a", "regression_residual"):  # both start exactly at copy-last (zero change, residual decoding)
        assert [p["step"] for p in curves[name]] == [0, 2, 4] and curves[name][0]["value"] == 0.0
    assert (out / "report" / "gain_over_copy_last.png").is_file() and (out / "report" / "heldout.png").is_file()
    bench = json.loads((out / "report" / "heldout.json").read_text())
    tp = bench["models"]["a2a"]["throughput"]
    assert [t["steps"] for t in tp] == [1, 10] and all(t["latent_only_fps"] > 0 and t["with_vae_fps"] > 0 for t in tp)
    r = run_tool("video_pipeline.py", *args)  # a second run reuses the trained stages
    assert r.returncode == 0 and r.stdout.count("[skip]") == 3, r.stdout[-2000:]


def test_video_gain_stays_finite_when_frames_repeat():
    """A video whose frames sometimes repeat: copy-last is exact there (per-frame PSNR capped at
    100 dB) but the per-video gain comes from mean squared errors and stays meaningful."""
    from a2a_temporal.commands.benchmark_video import video_gain_db
    from a2a_temporal.metrics import per_frame_psnr

    truth = sliding_square(9)[1:]
    copy = sliding_square(9)[:-1]
    copy[:3] = truth[:3]  # three still frames
    pred = truth.copy()
    pred[:, 0, 0] = 0  # a slightly wrong predictor, wrong by the same few pixels on every frame
    frame_gain = per_frame_psnr(pred, truth).mean() - per_frame_psnr(copy, truth).mean()
    assert frame_gain < 0  # the capped still frames make the better predictor look worse
    assert video_gain_db(pred, copy, truth) > 10  # its errors are far smaller than copy-last's
    assert video_gain_db(copy, copy, truth) == 0.0 and video_gain_db(pred, truth, truth) is None


@pytest.mark.parametrize("gain,ceiling,train_gain,verdict,limit", [
    (1.3, 29.0, 3.9, "learned", "more videos should help"),  # generalises partly, memorises more
    (1.3, 29.0, 1.5, "learned", None),
    (0.1, 0.3, 0.1, "no better than copy-last", "the VAE is the limit"),
    (0.1, 29.0, 25.0, "no better than copy-last", "more videos are needed"),
    (0.1, 29.0, 0.2, "no better than copy-last", "did not learn the change"),
    (0.1, 29.0, None, "no better than copy-last", "did not learn the change"),
    (1.3, 29.0, 1.5, "not shown", "includes no gain"),  # a mean gain that some held-out videos do not share
])
def test_the_verdict_names_the_limit(gain, ceiling, train_gain, verdict, limit):
    from a2a_temporal.commands.video_pipeline import verdict_for
    ci = (-0.2, 2.8) if verdict == "not shown" else (gain - 0.2, gain + 0.2)
    v, why = verdict_for(gain, ceiling, train_gain, 0.5, 18, ci, 20)
    assert v == verdict
    if limit is None:
        assert "help" not in why and "needed" not in why
    else:
        assert limit in why


def test_learning_curves_refuse_runs_without_evaluations(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text(json.dumps({"step": 100, "loss": 1.0}) + "\n")
    r = run_tool("learning_curves.py", "--run", f"x={run}", "--out", tmp_path / "c.png")
    assert r.returncode == 2 and "eval/val_psnr" in r.stderr and "metrics.jsonl" in r.stderr
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in (
        {"step": 0, "eval/success_once": 0.1}, {"step": 50, "eval/success_once": 0.5},
        {"step": 50, "eval/success_once": 0.7}, {"step": 100, "eval/success_once": 0.6})))
    r = run_tool("learning_curves.py", "--run", f"x={run}", "--metric", "eval/success_once", "--out", tmp_path / "c.png")
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "c.json").read_text())
    assert [p["value"] for p in res["curves"]["x"]] == [0.1, 0.7, 0.6]  # a resumed step keeps its last record
    assert res["summary"]["x"]["best"] == {"step": 50, "value": 0.7}


def test_lavfi_domains_are_readable_videos_with_their_stated_change(tmp_path):
    """scripts/make_lavfi_videos.py writes ordinary mp4 files (lavfi sources through PyAV); the
    cellular automaton scrolls up one 2-pixel cell row per frame, the gradients change little, and
    the pipeline's probe takes both folders."""
    import subprocess
    import sys

    from a2a_temporal.data.video_io import read_video

    root = Path(__file__).resolve().parents[1]
    for source in ("cellauto", "gradients", "life"):
        r = subprocess.run([sys.executable, str(root / "scripts" / "make_lavfi_videos.py"), "--source", source,
                            "--out", str(tmp_path / source), "--videos", "3", "--frames", "8", "--size", "32"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        assert sorted(p.name for p in (tmp_path / source).iterdir()) == [f"{source}_{i:03d}.mp4" for i in range(3)]
    v = np.asarray(read_video(tmp_path / "cellauto" / "cellauto_000.mp4")).astype(np.float32)
    assert v.shape == (8, 32, 32, 3)
    scrolled = np.abs(v[1:, :-2] - v[:-1, 2:]).mean()  # row r of frame t+1 is row r+2 of frame t
    assert scrolled < 0.25 * np.abs(v[1:] - v[:-1]).mean()
    g = np.asarray(read_video(tmp_path / "gradients" / "gradients_000.mp4")).astype(np.float32)
    assert np.abs(g[1:] - g[:-1]).mean() < 0.1 * np.abs(v[1:] - v[:-1]).mean()
    assert probe_folder(tmp_path / "cellauto", context=2)["frame_stride"] == 1
    # a folder is a fixed, seeded draw: generated again, every source gives the same frames
    for source in ("cellauto", "gradients", "life"):
        r = subprocess.run([sys.executable, str(root / "scripts" / "make_lavfi_videos.py"), "--source", source,
                            "--out", str(tmp_path / f"{source}_again"), "--videos", "2", "--frames", "8", "--size", "32"],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        for i in range(2):
            first = read_video(tmp_path / source / f"{source}_{i:03d}.mp4")
            assert np.array_equal(first, read_video(tmp_path / f"{source}_again" / f"{source}_{i:03d}.mp4")), (source, i)
    r = subprocess.run([sys.executable, str(root / "scripts" / "make_lavfi_videos.py"), "--source", "noise",
                        "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "noise" in r.stderr


def test_bouncing_shapes_move_a_little_every_frame_and_are_a_fixed_draw(tmp_path):
    """scripts/make_shapes_videos.py writes mp4 files whose shapes move (every frame differs from
    the last) by a couple of pixels (only a small part of the frame changes), the same files on a
    second run with the same seed and other files with another seed; a bad size exits 2."""
    import subprocess
    import sys

    from a2a_temporal.data.video_io import read_video

    script = Path(__file__).resolve().parents[1] / "scripts" / "make_shapes_videos.py"

    def make(out, *extra):
        return subprocess.run([sys.executable, str(script), "--out", str(out), "--videos", "3", "--frames", "10", *extra],
                              capture_output=True, text=True, timeout=120)

    for out, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        r = make(tmp_path / out, "--seed", seed)
        assert r.returncode == 0, r.stderr[-2000:]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [f"shapes_{i:03d}.mp4" for i in range(3)]
    for i in range(3):
        v = np.asarray(read_video(tmp_path / "a" / f"shapes_{i:03d}.mp4")).astype(np.float32)
        assert v.shape == (10, 32, 32, 3)
        changed = (np.abs(v[1:] - v[:-1]).max(axis=-1) > 24).mean(axis=(1, 2))  # per frame pair
        assert (changed > 0).all() and changed.max() < 0.3, changed
        assert np.array_equal(read_video(tmp_path / "a" / f"shapes_{i:03d}.mp4"),
                              read_video(tmp_path / "b" / f"shapes_{i:03d}.mp4"))
    assert not np.array_equal(read_video(tmp_path / "a" / "shapes_000.mp4"), read_video(tmp_path / "c" / "shapes_000.mp4"))
    r = make(tmp_path / "d", "--size", "15")
    assert r.returncode == 2 and "--size 15" in r.stderr


def test_vae_augmentation_keeps_frames_valid_and_changes_colours_and_layout():
    from a2a_temporal.heads.video.data import augment_frames

    g = torch.Generator().manual_seed(0)
    frames = torch.from_numpy(np.concatenate([sliding_square(4, size=32, seed=s) for s in range(8)]))  # (32, 32, 32, 3)
    assert augment_frames(frames, "none") is frames
    geo = augment_frames(frames, "geometry", g)
    assert geo.dtype == torch.uint8 and geo.shape == frames.shape
    # flips / turns move pixels but keep each frame's multiset of values
    assert torch.equal(geo.flatten(1).sort(dim=1).values, frames.flatten(1).sort(dim=1).values)
    assert not torch.equal(geo, frames)
    col = augment_frames(frames, "colour", g)
    assert col.dtype == torch.uint8 and col.shape == frames.shape
    assert (col.float().mean(dim=(1, 2)) - frames.float().mean(dim=(1, 2))).abs().max() > 5


def test_clip_augmentation_applies_one_transform_to_every_frame():
    """The predictor's copies keep the motion: frame t of a copy is frame t of the clip under the
    same transform, so two equal frames stay equal and the change between frames moves with them."""
    from a2a_temporal.heads.video.data import augment_clip

    clip = sliding_square(6, size=32, seed=3)
    clip = np.concatenate([clip[:1], clip])  # frames 0 and 1 equal
    assert augment_clip(clip, "none") is clip
    seen_change = False
    for seed in range(4):
        for mode in ("geometry", "colour"):
            out = augment_clip(clip, mode, torch.Generator().manual_seed(seed))
            assert out.shape == clip.shape and out.dtype == np.uint8
            assert np.array_equal(out[0], out[1]) and not np.array_equal(out[1], out[2])
            # the frames that changed still change (the transform keeps the motion)
            assert np.abs(out[2:].astype(int) - out[1:-1]).sum() > 0
            seen_change |= not np.array_equal(out, clip)
            if mode == "geometry":  # a flip / turn: the same transform maps frame 0 -> out 0 and frame 3 -> out 3
                for op in (lambda f: f, lambda f: f[:, ::-1], lambda f: f[::-1], lambda f: f[::-1, ::-1],
                           lambda f: f.transpose(1, 0, 2), lambda f: f[:, ::-1].transpose(1, 0, 2),
                           lambda f: f[::-1].transpose(1, 0, 2), lambda f: f[::-1, ::-1].transpose(1, 0, 2)):
                    if np.array_equal(op(clip[0]), out[0]):
                        assert all(np.array_equal(op(clip[t]), out[t]) for t in range(len(clip)))
                        break
                else:
                    raise AssertionError("frame 0 of the copy is no flip / turn of frame 0")
    assert seen_change


def test_train_video_refuses_augmenting_action_conditioned_videos(tmp_path):
    r = run_tool("train_video.py", "--output-dir", tmp_path / "p", "--vae-path", tmp_path / "none",
                 "--augment=colour", "--video.use_actions=true")
    assert r.returncode == 2 and "augment=colour" in r.stderr and "use_actions" in r.stderr


def test_train_vae_refuses_an_unknown_augmentation(tmp_path):
    d = write_folder(tmp_path / "v", n=2, T=8, size=32)
    r = run_tool("train_vae.py", "--output-dir", tmp_path / "out", f"--data.root={d}", "--data.size=32",
                 "--vae.image_size=32", "--augment=rotate")
    assert r.returncode == 2 and "augment='rotate'" in r.stderr and "none, geometry, colour" in r.stderr


def test_the_verdict_says_when_the_vae_learned_its_training_videos():
    from a2a_temporal.commands.video_pipeline import vae_gap_note

    assert vae_gap_note(35.1, 34.0, "none") == "" and vae_gap_note(None, 20.6, "none") == ""
    note = vae_gap_note(35.1, 20.6, "none")
    assert "35.1 dB" in note and "20.6 dB" in note and "--vae-augment colour" in note
    assert "--vae-augment" not in vae_gap_note(35.1, 20.6, "colour")


def test_learning_curves_against_training_time_and_time_to_target(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    recs = [{"step": 0, "train_time_s": 0.0, "train_cpu_s": 0.0, "eval/val_psnr": 10.0},
            {"step": 100, "loss": 0.5},
            {"step": 100, "train_time_s": 60.0, "train_cpu_s": 110.0, "eval/val_psnr": 24.0},
            {"step": 200, "train_time_s": 125.0, "train_cpu_s": 230.0, "eval/val_psnr": 26.5}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(x) + "\n" for x in recs))
    r = run_tool("learning_curves.py", "--run", f"x={run}", "--x", "train_cpu_s", "--target", "25",
                 "--out", tmp_path / "c.png")
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads((tmp_path / "c.json").read_text())
    assert [p["train_cpu_s"] for p in res["curves"]["x"]] == [0.0, 110.0, 230.0]
    assert res["summary"]["x"]["reaches_target"] == {"step": 200, "value": 26.5, "train_time_s": 125.0, "train_cpu_s": 230.0}
    assert "reaches 25 at iteration 200, train_cpu_s 230" in r.stdout
    r = run_tool("learning_curves.py", "--run", f"x={run}", "--target", "30", "--out", tmp_path / "d.png")
    assert r.returncode == 0 and json.loads((tmp_path / "d.json").read_text())["summary"]["x"]["reaches_target"] is None
    assert "never reaches the target" in r.stdout
    # a run recorded before evaluations carried the training time: refused against time, fine against steps
    (run / "metrics.jsonl").write_text(json.dumps({"step": 100, "eval/val_psnr": 20.0}) + "\n")
    r = run_tool("learning_curves.py", "--run", f"x={run}", "--x", "train_time_s", "--out", tmp_path / "e.png")
    assert r.returncode == 2 and "train_time_s" in r.stderr and "metrics.jsonl:1" in r.stderr


def test_mixed_precision_no_survives_yaml():
    from a2a_temporal.config import load_config
    from a2a_temporal.training import TrainConfig

    assert load_config(TrainConfig, overrides=["--mixed_precision=no"]).mixed_precision == "no"
    assert load_config(TrainConfig, overrides=["--mixed_precision=bf16"]).mixed_precision == "bf16"
    with pytest.raises(Exception, match="mixed_precision"):
        load_config(TrainConfig, overrides=["--mixed_precision=fp8"])


@pytest.mark.parametrize("name", ["vae_64.yaml", "vae_64_maniskill.yaml", "vae_64_maniskill_fast.yaml"])
def test_shipped_vae_configs_load(name):
    from a2a_temporal.commands.train_vae import TrainVAEConfig
    from a2a_temporal.config import load_config
    from a2a_temporal.heads.video import VideoVAE

    cfg = load_config(TrainVAEConfig, Path(__file__).resolve().parents[1] / "configs" / "video" / name)
    vae = VideoVAE(cfg.vae)
    assert cfg.vae.latent_shape == (4, 16, 16) and cfg.data.size == cfg.vae.image_size == 64
    n = sum(p.numel() for p in vae.parameters())
    if name.endswith("_fast.yaml"):  # narrower decoder, bf16 autocast; same latent
        assert cfg.train.mixed_precision == "bf16" and cfg.vae.block_out_channels == (32, 32, 64) and n < 0.8e6
    else:
        assert cfg.train.mixed_precision == "no" and n > 0.9e6
