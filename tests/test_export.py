"""Deployment: the folded inference path, ONNX export with parity, the verifying loader, the
latency benchmark's floor / breakdown / sweep. No simulator: a small synthetic ManiSkill-format
demo file stands in for real demos."""
import copy
import importlib.util
import json
import sys

import h5py
import numpy as np
import pytest
import torch

from a2a_temporal.backbone import TransformerConfig
from a2a_temporal.data.maniskill import read_demos
from a2a_temporal.flow import ObjectiveConfig
from a2a_temporal.heads.action import ActionFlowPolicy, PolicyConfig
from a2a_temporal.heads.action.factory import make_policy
from a2a_temporal.policy_setup import make_windows

from conftest import ROOT

pytest.importorskip("onnxruntime")
from a2a_temporal.export import ExportError, export_policy, load_onnx_policy  # noqa: E402

DOF, DS, A = 4, 10, 3


def write_demos(path, lengths=(14, 11, 9)):
    """ManiSkill trajectory file (state obs, pd_ee_delta_pos) with smooth random episodes."""
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        for i, T in enumerate(lengths):
            obs = np.cumsum(rng.normal(0, 0.1, (T + 1, DS)), 0).astype(np.float32)
            g = f.create_group(f"traj_{i}")
            g["obs"] = obs
            g["actions"] = np.tanh(rng.normal(0, 0.5, (T, A))).astype(np.float32)
            art = np.zeros((T + 1, 13 + 2 * DOF), np.float32)
            art[:, 13:13 + DOF] = obs[:, :DOF]
            g["env_states/articulations/panda"] = art
    meta = {"env_info": {"env_id": "PushCube-v1", "max_episode_steps": 50,
                         "env_kwargs": {"obs_mode": "state", "control_mode": "pd_ee_delta_pos"}},
            "episodes": [{"episode_id": i, "episode_seed": 100 + i} for i in range(len(lengths))]}
    path.with_suffix(".json").write_text(json.dumps(meta))
    return path


def small_config(**kw):
    return PolicyConfig(n_obs_steps=2, n_hist=4, horizon=4, n_action_steps=2, hidden_dim=32, latent_dim=8,
                        latent_tokens=2, backbone=TransformerConfig(preset="tiny", width=32, depth=1), **kw)


def trained_policy(h5, seed=0, **kw):
    """A few training steps, then a nudge of every backbone weight (adaLN-Zero starts at zero)."""
    meta, episodes = read_demos(h5)
    cfg = small_config(**kw)
    w = make_windows(episodes, cfg)
    torch.manual_seed(seed)
    policy = make_policy(cfg, meta, {"state": w.state, "qpos": w.qpos, "action": w.action})
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-2)
    for step in range(3):
        loss, _ = policy(w.__getitems__(list(range(step, len(w), 3))))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        for p in policy.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return policy.eval(), w


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Latency-sized work: one thread (two fight the other jobs on a busy 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory):
    return write_demos(tmp_path_factory.mktemp("demos") / "fake.h5")


@pytest.fixture(scope="module")
def ckpt(demo_file, tmp_path_factory):
    policy, w = trained_policy(demo_file)
    d = tmp_path_factory.mktemp("ckpt") / "pretrained_model"
    policy.save_pretrained(d, extra={"dataset": str(demo_file)})
    return d, w


@pytest.fixture(scope="module")
def exported(ckpt, tmp_path_factory):
    d, _ = ckpt
    out = tmp_path_factory.mktemp("onnx") / "policy.onnx"
    rep = export_policy(d, out, batches=300, batch_size=2, exporter="torchscript")
    return out, rep


def load_tool(name):
    """A tool's module (tools/ is not a package), to call its ``main(argv)`` in-process."""
    spec = importlib.util.spec_from_file_location(f"{name}_tool", ROOT / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ------------------------------------------------------------------ folded inference path
@pytest.mark.parametrize("objective", ["a2a", "flow", "regression", "mip", "ddim"])
@pytest.mark.parametrize("space", ["latent", "action"])
def test_folded_path_matches_the_reference_for_every_objective(demo_file, objective, space):
    aux = 0.0 if objective == "ddim" else 0.5
    policy, w = trained_policy(demo_file, objective=ObjectiveConfig(name=objective, rollout_weight=aux),
                               flow_space=space, decoded_rollout_weight=aux)
    batch = w.__getitems__(list(range(len(w))))
    for steps, method in [(None, None), (2, "midpoint" if objective in ("a2a", "flow") else None), (3, None)]:
        torch.manual_seed(5)
        got = policy.predict_action_chunk(batch, steps, method)
        torch.manual_seed(5)
        want = policy.predict_action_chunk_reference(batch, steps, method)
        assert got.shape == (len(w), 4, A)
        assert torch.allclose(got, want, atol=1e-5, rtol=0), (objective, space, steps, (got - want).abs().max())
    assert (policy.inference_plan() is None) == (objective == "ddim")


@pytest.mark.parametrize("objective", ["a2a", "regression", "mip"])
def test_batched_call_equals_stacked_batch_one_calls(demo_file, objective):
    policy, w = trained_policy(demo_file, objective=ObjectiveConfig(name=objective))
    idx = list(range(0, len(w), 2))
    batched = policy.predict_action_chunk(w.__getitems__(idx))
    stacked = torch.cat([policy.predict_action_chunk(w.__getitems__([i])) for i in idx])
    assert torch.allclose(batched, stacked, atol=1e-5, rtol=0)
    numpy_batch = {k: v.numpy() for k, v in w.__getitems__(idx).items()}
    assert torch.allclose(policy.predict_action_chunk(numpy_batch), batched, atol=1e-6, rtol=0)


def test_folded_path_follows_weight_changes(demo_file):
    policy, w = trained_policy(demo_file)
    batch = w.__getitems__(list(range(6)))
    before = policy.predict_action_chunk(batch)
    plan = policy.inference_plan()
    with torch.no_grad():
        policy.obs_encoder.net[0].weight.mul_(1.5)
        policy.normalizer.action_scale.mul_(2.0)
    assert policy.inference_plan() is not plan  # rebuilt: a folded weight changed in place
    after = policy.predict_action_chunk(batch)
    assert not torch.allclose(after, before)
    assert torch.allclose(after, policy.predict_action_chunk_reference(batch), atol=1e-5, rtol=0)
    twin = copy.deepcopy(policy)  # as the trainer's EMA copy: no stale plan travels along
    assert "_plan" not in twin.__dict__
    assert torch.allclose(twin.predict_action_chunk(batch), after, atol=0, rtol=0)
    state = trained_policy(demo_file, seed=1)[0].state_dict()
    policy.load_state_dict(state)
    assert torch.allclose(policy.predict_action_chunk(batch), policy.predict_action_chunk_reference(batch),
                          atol=1e-5, rtol=0)
    policy.train()
    assert policy.inference_plan() is None  # training mode: the reference path (dropout, image shift)


# ------------------------------------------------------------------ export
def test_export_parity_and_loader(ckpt, exported):
    d, w = ckpt
    out, rep = exported
    assert rep["max_abs_diff"] < 1e-4 and rep["batches"] == 300 and rep["windows"] == 600
    policy = ActionFlowPolicy.from_pretrained(d)
    onnx_policy = load_onnx_policy(out, checkpoint=d, threads=1)
    assert onnx_policy.input_names == ["state", "qpos_hist", "prev_action", "prev_action_is_pad"]
    assert onnx_policy.config == policy.config
    meta = onnx_policy.metadata
    assert meta["a2a.checkpoint_sha256"] == rep["checkpoint_sha256"]
    assert json.loads(meta["a2a.num_inference_steps"]) == 1
    for idx in ([0], list(range(7))):  # dynamic batch axis; numpy or torch inputs, extra keys ignored
        batch = w.__getitems__(idx)
        want = policy.predict_action_chunk(batch).numpy()
        got = onnx_policy.predict_action_chunk({k: v.numpy() for k, v in batch.items()})
        assert got.shape == (len(idx), 4, A) and np.abs(got - want).max() < 1e-4
        assert np.abs(onnx_policy.predict_action_chunk(batch) - want).max() < 1e-4


def test_dynamo_export_parity(ckpt, tmp_path):
    d, w = ckpt
    rep = export_policy(d, tmp_path / "p.onnx", windows=w, batches=50, exporter="dynamo")
    assert rep["exporter"] == "dynamo" and rep["max_abs_diff"] < 1e-4
    got = load_onnx_policy(tmp_path / "p.onnx").predict_action_chunk(w.__getitems__([1, 2, 3]))
    assert got.shape == (3, 4, A)


def test_tampered_graph_is_refused(exported, tmp_path):
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(exported[0]))
    init = max(model.graph.initializer, key=lambda t: int(np.prod(t.dims)))
    arr = numpy_helper.to_array(init).copy()
    arr.flat[0] += 0.5
    init.CopyFrom(numpy_helper.from_array(arr, init.name))
    onnx.save(model, str(tmp_path / "tampered.onnx"))
    with pytest.raises(ExportError, match="modified after export") as e:
        load_onnx_policy(tmp_path / "tampered.onnx")
    assert "\n" not in str(e.value)


def test_mismatched_checkpoint_is_refused(demo_file, exported, tmp_path):
    other, _ = trained_policy(demo_file, seed=7)
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(ExportError, match="not the same checkpoint") as e:
        load_onnx_policy(exported[0], checkpoint=tmp_path / "other")
    msg = str(e.value)
    assert str(exported[0]) in msg and str(tmp_path / "other" / "model.safetensors") in msg and "\n" not in msg


def test_failed_parity_writes_nothing(ckpt, tmp_path):
    d, w = ckpt
    with pytest.raises(ExportError, match="parity check failed.*not written"):
        export_policy(d, tmp_path / "p.onnx", windows=w, batches=5, tolerance=1e-12, exporter="torchscript")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kw, why", [({"objective": ObjectiveConfig(name="flow")}, "Gaussian noise"),
                                     ({"history_input_noise": 0.1}, "history_input_noise"),
                                     ({"objective": ObjectiveConfig(name="a2a", start_point_noise=0.2)},
                                      "start_point_noise")])
def test_noisy_samplers_are_refused(demo_file, tmp_path, kw, why):
    policy, _ = trained_policy(demo_file, **kw)
    policy.save_pretrained(tmp_path / "ckpt")
    with pytest.raises(ExportError, match=why):
        export_policy(tmp_path / "ckpt", tmp_path / "p.onnx", batches=1)
    assert not (tmp_path / "p.onnx").exists()


def test_missing_extra_names_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(ExportError, match=r"pip install 'a2a_temporal\[deploy\]'"):
        load_onnx_policy("anything.onnx")


def test_export_tool(ckpt, tmp_path, capsys):
    """The CLI, in-process: parity on the dataset named in the checkpoint's config.json."""
    tool = load_tool("export_policy")
    d, _ = ckpt
    out = tmp_path / "cli.onnx"
    rep = tool.main([str(d), "--out", str(out), "--batches", "40", "--exporter", "torchscript"])
    assert "over 40 batches" in capsys.readouterr().out and out.is_file() and rep["max_abs_diff"] < 1e-4
    with pytest.raises(SystemExit) as e:
        tool.main([str(d), "--out", str(tmp_path / "no.onnx"), "--batches", "3", "--tolerance", "1e-15",
                   "--exporter", "torchscript"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: parity check failed") and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.json", "cli.onnx"]  # nothing of the refused one
    report = json.loads((tmp_path / "cli.json").read_text())
    assert report["max_abs_diff"] == rep["max_abs_diff"] and report["batches"] == 40
    assert report["command"].startswith("python tools/export_policy.py ") and "--batches 40" in report["command"]


# ------------------------------------------------------------------ benchmark
SMALL = ["--policy.backbone.width=32", "--policy.backbone.depth=1", "--policy.hidden_dim=32",
         "--policy.latent_dim=8", "--policy.latent_tokens=2"]


def test_benchmark_reports_floor_breakdown_runtimes_and_sweep(demo_file, tmp_path):
    bench = load_tool("benchmark")
    out = tmp_path / "lat.json"
    try:
        res = bench.main(["--config", str(ROOT / "configs/policy/pushcube_state.yaml"), "--variants", "a2a:1", "mip:2",
                          "--calls", "6", "--rounds", "2", "--runtimes", "eager", "ort", "--onnx-exporter",
                          "torchscript", "--batch-sizes", "1,4", "--sweep-seconds", "0.02", "--json", str(out),
                          f"--dataset.path={demo_file}", *SMALL])
    finally:
        torch.set_num_threads(1)
    saved = json.loads(out.read_text())
    assert saved["reference"] == "a2a:1" and saved["threads"] == 1 and saved["calls_per_variant"] == 6
    floor = saved["floor"]
    assert floor["p50_ms"] > 0 and floor["x_tokens"] == [2, 8] and floor["cond_tokens"] == [3, 32]
    assert saved["floor_ratio"] == pytest.approx(saved["rows"][0]["p50_ms"] / floor["p50_ms"])
    assert saved["rows"][0]["floor_ratio"] == pytest.approx(saved["floor_ratio"])
    ort = saved["runtimes"]["ort"]
    assert "error" not in ort and ort["floor_ratio"] > 0 and ort["max_abs_diff_vs_eager"] < 1e-4
    for path in ("folded", "reference"):
        bd = saved["breakdown"][path]
        assert set(bd["stages_ms"]) == {"normalisation", "observation encoder", "history token + source encoder",
                                        "flow step (backbone)", "chunk decoder + unnormalisation"}
        assert bd["overhead_ms"] == pytest.approx(bd["total_ms"] - sum(bd["stages_ms"].values()))
    sweep = saved["batch_sweep"]["rows"]
    assert [r["batch"] for r in sweep["eager"]] == [1, 4] and sweep["eager"][0]["ratio_to_batch1"] == 1.0
    assert [r["batch"] for r in sweep["ort"]] == [1, 4]
    assert saved["process"]["cpu_s"] > 0 and saved["process"]["wall_s"] > 0
    assert out.with_suffix(".png").is_file() and res["floor_ratio"] == saved["floor_ratio"]
    assert saved["command"].startswith("python tools/benchmark.py --config ") and "--calls 6" in saved["command"]


def test_benchmark_variants_can_name_a2a_flow_starts(demo_file, tmp_path):
    from a2a_temporal.commands import benchmark as bench

    a = bench.parse(["--config", str(ROOT / "configs/policy/pushcube_state.yaml"), "--variants", "a2a:1",
                     "a2a+legendre:1", "a2a+last_action_gaussian:1", f"--dataset.path={demo_file}", *SMALL])
    variants, ckpts, _, _ = bench.check_args(a)
    policies, _ = bench.build_policies(a, variants, ckpts)
    configs = {spec: p.config for spec, (p, _, _) in policies.items()}
    assert configs["a2a:1"].source == "history_mlp" and configs["a2a+legendre:1"].source == "legendre"
    assert configs["a2a+last_action_gaussian:1"].flow_space == "action" and configs["a2a:1"].flow_space == "latent"
    batch = policies["a2a:1"][2].__getitems__([0])
    for spec, (p, steps, _) in policies.items():
        assert p.predict_action_chunk(batch, steps).shape[-2:] == (p.config.horizon, p.config.action_dim), spec


@pytest.mark.parametrize("args, msg", [(["--variants", "a2a"], "--variants 'a2a': expected OBJECTIVE[+SOURCE][/METHOD]:STEPS"),
                                       (["--variants", "flow+legendre:1"], "SOURCE (a2a only)"),
                                       (["--variants", "a2a+noise:1"], "--variants 'a2a+noise:1'"),
                                       (["--variants", "foo:1"], "--variants 'foo:1'"),
                                       (["--variants", "a2a:0"], "--variants 'a2a:0'"),
                                       (["--checkpoint", "a2a"], "--checkpoint 'a2a': expected OBJECTIVE[+SOURCE]=DIR"),
                                       (["--checkpoint", "flow=x"], "no variant uses objective flow"),
                                       (["--runtimes", "tensorrt"], "--runtimes 'tensorrt'")])
def test_benchmark_malformed_arguments_are_one_line_errors(capsys, args, msg):
    bench = load_tool("benchmark")
    with pytest.raises(SystemExit) as e:
        bench.main(["--variants", "a2a:1", *args] if args[0] != "--variants" else args)
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and msg in err and err.count("\n") == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_benchmark_on_cuda_without_a_gpu_is_a_one_line_error(capsys):
    bench = load_tool("benchmark")
    with pytest.raises(SystemExit) as e:
        bench.main(["--variants", "a2a:1", "--device", "cuda"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "--device cuda: no CUDA GPU is visible to torch here" in err and err.count("\n") == 1
