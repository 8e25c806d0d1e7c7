"""Policy data: windows and padding, the normaliser, the action queue (no simulator needed)."""
import dataclasses
import numpy as np
import pytest
import torch

from a2a_temporal.data.maniskill import Episode
from a2a_temporal.data.normalize import Normalizer
from a2a_temporal.data.windows import PolicyWindows
from a2a_temporal.heads.action import ActionFlowPolicy, PolicyConfig
from a2a_temporal.backbone import TransformerConfig
from a2a_temporal.flow import ObjectiveConfig


def episode(T, offset=0.0, Ds=3, Dq=2, A=2):
    """Values encode (episode offset + time) so windows can be checked exactly."""
    t_obs = np.arange(T + 1, dtype=np.float32)[:, None] + offset
    t_act = np.arange(T, dtype=np.float32)[:, None] + offset
    return Episode(state=np.repeat(t_obs, Ds, 1), qpos=np.repeat(t_obs, Dq, 1), action=np.repeat(t_act, A, 1) + 0.5)


def test_windows_and_padding_edges():
    eps = [episode(5, 0.0), episode(4, 100.0)]
    w = PolicyWindows(eps, n_obs_steps=2, n_hist=3, horizon=4)
    assert len(w) == 9
    s = w[0]  # first step of episode 0
    assert s["state"][:, 0].tolist() == [0, 0]  # edge-padded before the start
    assert s["qpos_hist"][:, 0].tolist() == [0, 0, 0]
    assert s["prev_action_is_pad"].tolist() == [True, True, True]
    assert s["prev_action"].abs().sum() == 0
    assert s["action"][:, 0].tolist() == [0.5, 1.5, 2.5, 3.5]
    assert s["action_is_pad"].tolist() == [False] * 4
    s = w[4]  # last step (t = 4) of episode 0
    assert s["state"][:, 0].tolist() == [3, 4]
    assert s["prev_action"][:, 0].tolist() == [1.5, 2.5, 3.5]
    assert s["prev_action_is_pad"].tolist() == [False] * 3
    assert s["action"][:, 0].tolist() == [4.5, 4.5, 4.5, 4.5]  # edge-padded after the end
    assert s["action_is_pad"].tolist() == [False, True, True, True]
    s = w[6]  # t = 1 of episode 1: never reads episode 0
    assert s["state"][:, 0].tolist() == [100, 101]
    assert s["prev_action"][:, 0].tolist() == [0, 0, 100.5]
    assert s["prev_action_is_pad"].tolist() == [True, True, False]
    batch = w.__getitems__([0, 4, 6])
    assert batch["action"].shape == (3, 4, 2) and batch["state"].shape == (3, 2, 3)


def test_normalizer_round_trip_and_constant_dims():
    n = Normalizer({"x": 3}, {"x": "minmax"})
    data = np.stack([np.linspace(-2, 6, 50), np.full(50, 7.0), np.linspace(0, 1, 50)], 1)
    n.fit({"x": data})
    x = torch.as_tensor(data, dtype=torch.float32)
    z = n.normalize("x", x)
    assert torch.allclose(z[:, 0].min(), torch.tensor(-1.0)) and torch.allclose(z[:, 0].max(), torch.tensor(1.0))
    assert torch.allclose(z[:, 1], torch.zeros(50))  # constant dimension: centred, scale 1
    assert torch.allclose(n.unnormalize("x", z), x, atol=1e-5)
    m = Normalizer({"x": 3}, {"x": "meanstd"})
    m.fit({"x": data})
    assert torch.allclose(m.normalize("x", x)[:, 0].std(), torch.tensor(1.0), atol=1e-3)


def tiny_policy(**kw):
    cfg = PolicyConfig(state_dim=3, qpos_dim=2, action_dim=2, n_obs_steps=2, n_hist=4, horizon=4, n_action_steps=3,
                       hidden_dim=32, latent_dim=8, latent_tokens=2,
                       backbone=TransformerConfig(preset="tiny", width=32, depth=1), **kw)
    policy = ActionFlowPolicy(cfg)
    eps = [episode(6, 0.0), episode(5, 3.0)]
    w = PolicyWindows(eps, cfg.n_obs_steps, cfg.n_hist, cfg.horizon)
    policy.normalizer.fit({"state": w.state, "qpos": w.qpos, "action": w.action})
    torch.manual_seed(0)
    with torch.no_grad():
        for p in policy.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return policy.eval(), w


def test_normalizer_travels_inside_the_weights(tmp_path):
    policy, _ = tiny_policy()
    policy.save_pretrained(tmp_path / "p")
    from safetensors.torch import load_file
    state = load_file(tmp_path / "p" / "model.safetensors")
    assert "normalizer.action_scale" in state and bool(state["normalizer.fitted"])
    loaded = ActionFlowPolicy.from_pretrained(tmp_path / "p")
    assert torch.equal(loaded.normalizer.action_offset, policy.normalizer.action_offset)
    assert torch.equal(loaded.normalizer.state_scale, policy.normalizer.state_scale)


def test_unfitted_normalizer_is_refused():
    policy, w = tiny_policy()
    fresh = ActionFlowPolicy(policy.config)
    with pytest.raises(RuntimeError, match="never fitted"):
        fresh.predict_action_chunk(w.__getitems__([0]))


@pytest.mark.parametrize("objective", ["a2a", "flow", "ddim", "regression", "mip"])
@pytest.mark.parametrize("space", ["latent", "action"])
def test_every_objective_trains_and_predicts(objective, space):
    aux = 0.0 if objective == "ddim" else 0.5  # diffusion has no differentiable sampler for rollout terms
    policy, w = tiny_policy(objective=ObjectiveConfig(name=objective, rollout_weight=2 * aux, rollout_k=2),
                            flow_space=space, decoded_rollout_weight=aux)
    policy.train()
    loss, info = policy(w.__getitems__(list(range(8))))
    loss.backward()
    assert torch.isfinite(loss)
    chunk = policy.eval().predict_action_chunk(w.__getitems__([0, 1]), num_inference_steps=2)
    assert chunk.shape == (2, 4, 2) and torch.isfinite(chunk).all()


def test_select_action_serves_a_chunk_then_replans(monkeypatch):
    policy, _ = tiny_policy()
    chunks = []
    real = policy.predict_action_chunk

    def spy(batch, num_inference_steps=None, method=None):
        out = real(batch, num_inference_steps, method)
        chunks.append((batch, out[0].numpy().copy()))
        return out

    monkeypatch.setattr(policy, "predict_action_chunk", spy)
    policy.reset()
    served = []
    for t in range(7):
        frame = {"state": np.full(3, float(t), np.float32), "qpos": np.full(2, float(t), np.float32)}
        served.append(policy.select_action(frame))
    assert len(chunks) == 3  # steps 0, 3, 6 (n_action_steps = 3)
    assert np.allclose(np.stack(served[:3]), chunks[0][1][:3])
    assert np.allclose(np.stack(served[3:6]), chunks[1][1][:3])
    # The second plan sees the actions executed so far as its previous actions.
    b = chunks[1][0]
    assert b["prev_action_is_pad"][0].tolist() == [True, False, False, False]
    assert np.allclose(b["prev_action"][0, 1:].numpy(), np.stack(served[:3]))
    assert b["state"][0, :, 0].tolist() == [2.0, 3.0]
    policy.reset()
    policy.select_action({"state": np.zeros(3, np.float32), "qpos": np.zeros(2, np.float32)})
    assert len(chunks) == 4


def test_spatial_softmax_returns_the_position_of_the_peak():
    """One keypoint on an 8 x 8 map with a single hot cell: its expected (x, y) is that cell's place."""
    from a2a_temporal.heads.action.encoders import SpatialSoftmax

    pool = SpatialSoftmax(channels=1, keypoints=1)
    with torch.no_grad():
        pool.to_maps.weight.fill_(1.0)
        pool.to_maps.bias.zero_()
    fmap = torch.zeros(2, 1, 8, 8)
    fmap[0, 0, 6, 2] = 50.0  # row 6, column 2
    fmap[1, 0, 1, 7] = 50.0
    out = pool(fmap)  # (N, 2K) = x then y
    grid = torch.linspace(-1, 1, 8)
    assert out.shape == (2, 2)
    assert torch.allclose(out[0], torch.stack([grid[2], grid[6]]), atol=1e-3)
    assert torch.allclose(out[1], torch.stack([grid[7], grid[1]]), atol=1e-3)


def test_spatial_softmax_image_encoder_sees_where_an_object_is(tmp_path):
    """A 64 px frame through the dilated ResNet (8 x 8 map) and keypoints: moving a bright square
    changes the condition; the pooling's weights travel through save/reload; bad values are refused."""
    from a2a_temporal.heads.action.encoders import ObservationEncoder, SpatialSoftmax, build_image_backbone

    net, _ = build_image_backbone("resnet_small_gn", output_stride=8, feature_map=True)
    assert net(torch.zeros(1, 3, 64, 64)).shape[-2:] == (8, 8)
    torch.manual_seed(0)
    enc = ObservationEncoder(3, 32, "resnet_small_gn", 16, image_pool="spatial_softmax", image_keypoints=8,
                             image_output_stride=8).eval()
    assert isinstance(enc.image[1], SpatialSoftmax) and enc.image_proj.in_features == 16
    state = torch.zeros(1, 2, 3)
    left, right = -torch.ones(1, 2, 3, 64, 64), -torch.ones(1, 2, 3, 64, 64)
    left[..., 20:28, 4:12] = 1.0
    right[..., 20:28, 50:58] = 1.0
    with torch.no_grad():
        out_l, out_r = enc(state, left), enc(state, right)
    assert out_l.shape == (1, 2, 32) and (out_l - out_r).abs().max() > 1e-3

    policy, w = tiny_policy()
    cfg = dataclasses.replace(policy.config, obs_mode="rgb", image_size=64, image_features=16,
                              image_pool="spatial_softmax", image_keypoints=4, image_output_stride=16)
    rgb = ActionFlowPolicy(cfg).eval()
    assert any(isinstance(m, SpatialSoftmax) for m in rgb.modules())
    rgb.save_pretrained(tmp_path / "p")
    loaded = ActionFlowPolicy.from_pretrained(tmp_path / "p")
    assert loaded.config.image_pool == "spatial_softmax" and loaded.config.image_output_stride == 16
    for a, b in zip(rgb.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    for field, bad in (("image_pool", "max"), ("image_output_stride", 4), ("image_keypoints", 0)):
        with pytest.raises(ValueError, match=f"policy.{field}"):
            dataclasses.replace(policy.config, **{field: bad})


def test_colour_jitter_changes_colours_per_sample_not_geometry_and_only_in_training():
    """policy.image_colour_jitter: off means the exact frames; on, each sample's frames share one
    draw (a frame pair differs as before), pixels stay in range and ordered by grey level within a
    flat-coloured ramp (colour, not geometry, changes); eval mode is untouched; bad values refused."""
    from a2a_temporal.heads.action.encoders import prepare_images

    torch.manual_seed(0)
    ramp = torch.arange(64, dtype=torch.uint8)[None, :].repeat(64, 1) * 3 + 30  # grey ramp along x
    frame = ramp[..., None].repeat(1, 1, 3)  # (64, 64, 3)
    image = torch.stack([frame, frame.flip(1)])[None].repeat(8, 1, 1, 1, 1)  # (8 samples, 2 frames, ...)
    plain = prepare_images(image)
    assert torch.equal(plain, prepare_images(image, 0, 0.0))
    out = prepare_images(image, 0, 0.5)
    assert out.shape == plain.shape and out.min() >= -1 and out.max() <= 1
    assert (out - plain).abs().amax(dim=(1, 2, 3, 4)).min() > 1e-3  # every sample re-coloured
    assert (out[:, 0].mean(dim=(1, 2, 3)) - out[1:, 0].mean(dim=(1, 2, 3)).mean()).abs().max() > 1e-2
    # one draw per sample: frame 1 is frame 0 flipped, before and after (same factors)
    assert torch.allclose(out[:, 1], out[:, 0].flip(-1), atol=1e-6)
    # still a monotone ramp along x (brightness / contrast / saturation / gain never reorder a grey ramp)
    assert (out[:, 0, :, 0].diff(dim=-1) >= -1e-6).all()

    policy, w = tiny_policy()
    cfg = dataclasses.replace(policy.config, obs_mode="rgb", image_size=64, image_features=16, image_shift=0,
                              image_colour_jitter=0.4)
    rgb = ActionFlowPolicy(cfg).eval()
    batch = {"state": torch.zeros(2, cfg.n_obs_steps, cfg.state_dim), "image": image[:2]}
    hist = torch.zeros(2, cfg.n_hist, cfg.qpos_dim + cfg.action_dim)  # (B, Th, Dq + A)
    with torch.no_grad():
        a, b = rgb._condition(batch, hist), rgb._condition(batch, hist)
        assert torch.equal(a, b)  # no augmentation at inference
        rgb.train()
        assert not torch.equal(rgb._condition(batch, hist), a)
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="policy.image_colour_jitter"):
            dataclasses.replace(cfg, image_colour_jitter=bad)


def test_image_aux_loss_reads_the_object_position_of_each_observed_frame():
    """policy.image_aux_weight: the windows carry the object's position at the observed frames, the
    loss trains the image encoder toward it, and the term is refused where no positions exist."""
    from a2a_temporal.errors import ConfigError
    from a2a_temporal.policy_setup import DatasetConfig, load_demos

    rng = np.random.default_rng(0)
    eps = []
    for T, off in ((6, 0.0), (5, 3.0)):
        e = episode(T, off)
        e.image = rng.integers(0, 255, (T + 1, 64, 64, 3), dtype=np.uint8)
        e.aux = np.stack([np.arange(T + 1) + off, -np.arange(T + 1) - off, np.full(T + 1, 0.02)], 1).astype(np.float32)
        eps.append(e)
    w = PolicyWindows(eps, n_obs_steps=2, n_hist=4, horizon=4, use_images=True, use_aux=True)
    s = w[3]  # t = 3 of episode 0: frames 2 and 3
    assert s["aux"][:, 0].tolist() == [2.0, 3.0] and s["aux"][:, 1].tolist() == [-2.0, -3.0]
    with pytest.raises(ValueError, match="object positions"):
        PolicyWindows([episode(4)], 2, 4, 4, use_aux=True)

    policy, _ = tiny_policy()
    cfg = dataclasses.replace(policy.config, obs_mode="rgb", image_size=64, image_features=16, image_aux_weight=1.0)
    rgb = ActionFlowPolicy(cfg).train()
    assert rgb.aux_head is not None and "aux" in rgb.normalizer.keys
    rgb.normalizer.fit({"state": w.state, "qpos": w.qpos, "action": w.action, "aux": w.aux})
    loss, info = rgb(w.__getitems__(np.arange(len(w))))
    assert "loss_image_aux" in info and float(info["loss_image_aux"]) > 0
    loss.backward()
    assert rgb.aux_head.weight.grad.abs().sum() > 0 and rgb.obs_encoder.image_proj.weight.grad.abs().sum() > 0
    plain = ActionFlowPolicy(dataclasses.replace(cfg, image_aux_weight=0.0))
    assert plain.aux_head is None and "aux" not in plain.normalizer.keys
    with pytest.raises(ValueError, match="policy.image_aux_weight"):
        dataclasses.replace(cfg, image_aux_weight=-1.0)
    with pytest.raises(ConfigError, match="dataset.format=lerobot"):
        load_demos(DatasetConfig(path="somewhere", format="lerobot"), cfg)


def test_whitened_split_is_calibrated_on_gaussian_clouds_and_finds_two():
    """A one-cloud neighbourhood, of any covariance, falls under p < 0.05 about 5 % of the time;
    two clouds far more often."""
    from a2a_temporal.metrics.modes import gaussian_split_null, whitened_split

    k, d = 64, 2
    null = gaussian_split_null(k, d, 2000, seed=1)
    g = torch.Generator().manual_seed(0)
    mix = torch.randn(d, d, generator=g, dtype=torch.float64) * 3  # an arbitrary covariance

    def share_small_p(x):
        f = whitened_split(x @ mix).numpy()
        p = (len(null) - np.searchsorted(null, f, side="left") + 1) / (len(null) + 1)
        return float((p < 0.05).mean())

    one = torch.randn(400, k, d, generator=g, dtype=torch.float64)
    assert 0.01 <= share_small_p(one) <= 0.10
    two = one.clone()
    two[..., 0] += 2.0 * (torch.randint(0, 2, (400, k), generator=g) * 2 - 1)
    assert share_small_p(two) > 0.8
    with pytest.raises(ValueError, match="more points than dimensions"):
        whitened_split(torch.randn(3, 3, 3, dtype=torch.float64))


def test_mode_statistics_take_out_smooth_input_dependence_and_skip_the_own_episode():
    """Chunks that vary smoothly with the input are one answer per input: with the local linear fit
    the split test stays near its 5 %, without it the smear of inputs reads as a split."""
    from a2a_temporal.metrics.modes import mode_statistics, neighbourhoods

    rng = np.random.default_rng(0)
    n = 8000
    x = rng.uniform(-1, 1, size=(n, 4)).astype(np.float32)
    groups = np.arange(n) // 50
    y = np.sin(2 * x @ rng.normal(size=(4, 24))) * 2 + 0.3 * rng.normal(size=(n, 24))
    q = np.arange(0, n, 20)
    nb = neighbourhoods(x, groups, q[:10], k=8)
    assert (groups[nb] != groups[q[:10], None]).all()
    fit = mode_statistics(x, y, groups, q, k=64, dims=3, rank=4, null_draws=1000)
    raw = mode_statistics(x, y, groups, q, k=64, dims=3, rank=0, null_draws=1000)
    assert (fit["p"] < 0.05).mean() < 0.10 < (raw["p"] < 0.05).mean()
    assert fit["residual"].mean() < raw["residual"].mean()
    two = y + 0.6 * rng.choice([-1, 1], size=(n, 1))
    split = mode_statistics(x, two, groups, q, k=64, dims=3, rank=4, null_draws=1000)
    assert (split["p"] < 0.05).mean() > 0.5
    assert split["residual"].mean() / split["total_var"] > fit["residual"].mean() / fit["total_var"]
    with pytest.raises(ValueError, match="neighbours"):
        mode_statistics(x, y, groups, q, k=8, dims=3, rank=4)


def test_demo_modes_script_on_planner_demos(demos, tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    script = str(root / "scripts/demo_modes.py")
    out = tmp_path / "modes.json"
    r = subprocess.run([sys.executable, script, str(demos), "--k", "16", "--dims", "2", "--rank", "2",
                        "--queries", "40", "--null-draws", "300", "--json", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())["results"][0]
    assert res["env_id"] == "PushCube-v1" and res["episodes"] == 3 and res["all"]["queries"] == 40
    assert 0 < res["all"]["residual_fraction"] < 1 and 0 <= res["all"]["p_below_0.05"] <= 1
    assert sum(res["by_phase"][ph]["queries"] for ph in ("early", "middle", "late")) == 40
    assert out.with_suffix(".png").stat().st_size > 0
    r = subprocess.run([sys.executable, script, str(demos), "--k", "4", "--json", str(tmp_path / "x.json")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "--k 4" in r.stderr
    raw = demos.parent / "motionplanning.h5"
    r = subprocess.run([sys.executable, script, str(raw), "--json", str(tmp_path / "y.json")], capture_output=True, text=True)
    assert r.returncode == 2 and str(raw) in r.stderr and not (tmp_path / "y.json").exists()
