"""End to end on the real ManiSkill simulator, tiny: demos -> training -> evaluation, and bad input."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from a2a_temporal.errors import DataError

from conftest import run_tool

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "tools"


def tiny_overrides(demos, out):
    return ["--config", ROOT / "configs/policy/pushcube_state.yaml", "--output-dir", out,
            f"--dataset.path={demos}", "--train.iterations=20", "--train.batch_size=16", "--train.log_every=5",
            "--train.eval_every=0", "--eval.episodes=1", "--eval.num_envs=1",
            "--eval.max_episode_steps=10", "--policy.backbone.width=32", "--policy.backbone.depth=1",
            "--policy.hidden_dim=32"]


@pytest.mark.slow
def test_end_to_end_demos_train_eval(demos, tmp_path):
    with h5py.File(demos) as f:
        assert len([k for k in f if k.startswith("traj_")]) == 3
        assert f["traj_0/actions"].shape[1] == 4  # pd_ee_delta_pos: xyz + gripper
    meta = json.loads(demos.with_suffix(".json").read_text())
    assert meta["env_info"]["env_kwargs"]["control_mode"] == "pd_ee_delta_pos"

    r = run_tool("train_policy.py", *tiny_overrides(demos, tmp_path / "run"))
    assert r.returncode == 0, r.stderr[-3000:]
    ckpt = tmp_path / "run" / "checkpoints"
    assert (ckpt / "last" / "pretrained_model" / "model.safetensors").is_file()
    assert (ckpt / "best").is_symlink()
    summary = json.loads((tmp_path / "run" / "train_summary.json").read_text())
    assert summary["iterations"] == 20
    metrics = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("eval/success_once" in m for m in metrics)

    assert summary["end_padding"] == "hold"  # delta control: zero arm motion past an episode's end
    run_config = json.loads((tmp_path / "run" / "run_config.json").read_text())
    demo_seeds = run_config["policy"]["demo_seeds"]
    assert len(demo_seeds) == 3 and demo_seeds == sorted(demo_seeds)

    # The checkpoint knows its demo seeds: evaluating on one of them is refused, by name.
    r = run_tool("eval_policy.py", "--checkpoint", tmp_path / "run", "--episodes", 2, "--seed", demo_seeds[1],
                 "--max-episode-steps", 5, "--quiet")
    assert r.returncode == 2
    assert f"evaluation seed {demo_seeds[1]} is one of this policy's training-demo seeds" in r.stderr.splitlines()[-1]
    r = run_tool("eval_policy.py", "--checkpoint", tmp_path / "run", "--num-inference-steps", 0)
    assert r.returncode == 2 and "positive integer" in r.stderr.splitlines()[-1]

    out_json = tmp_path / "eval" / "eval.json"
    r = run_tool("eval_policy.py", "--checkpoint", tmp_path / "run", "--episodes", 2, "--num-inference-steps", 1,
                 "--json", out_json, "--num-envs", 2, "--max-episode-steps", 20, "--seed", 1_000_007,
                 "--video-dir", tmp_path / "videos", "--video-episodes", 1, "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out_json.read_text())
    assert res["complete"] and res["episodes"] == 2 and res["seeds"] == [1_000_007, 1_000_008]
    assert res["seed_split"] == "test" and res["horizon"] == 20 and res["registered_max_episode_steps"] == 50
    assert 0.0 <= res["success_once"] <= 1.0 and res["success_at_end"] <= res["success_once"]
    lo, hi = res["success_once_ci95"]
    assert 0.0 <= lo <= res["success_once"] <= hi <= 1.0
    lat = res["latency"]
    # 20 steps, re-planning every 8: 3 planning steps, each serving both environments in one call.
    assert res["policy_calls"] == 3 and lat["calls"] == 3 and lat["batch_size_max"] == 2 and lat["p50_ms"] > 0
    assert res["versions"]["mani_skill"] and res["policy_config"]["env_id"] == "PushCube-v1"
    assert res["stages_reached"] == {} and res["stages_at_end"] == {}  # PushCube reports no sub-goal flags
    episodes = [json.loads(x) for x in out_json.with_name("eval.episodes.jsonl").read_text().splitlines()]
    assert [e["seed"] for e in episodes] == [1_000_007, 1_000_008]
    # Without --json the results go beside the checkpoints, never into a checkpoint directory.
    r = run_tool("eval_policy.py", "--checkpoint", tmp_path / "run" / "checkpoints" / "last", "--episodes", 1,
                 "--num-envs", 1, "--max-episode-steps", 3, "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "run" / "eval" / "last_default_seed1000000.json").is_file()
    assert not [p for p in (tmp_path / "run" / "checkpoints").rglob("*") if "eval" in p.name]
    videos = list((tmp_path / "videos").glob("*.mp4"))
    assert len(videos) == 1
    from a2a_temporal.data.video_io import read_video
    assert read_video(videos[0]).shape[0] == 20


@pytest.mark.slow
def test_checkpoint_reload_gives_identical_actions(demos, tmp_path):
    from a2a_temporal.config import load_config
    from a2a_temporal.heads.action import ActionFlowPolicy
    from a2a_temporal.policy_setup import TrainPolicyConfig, build_training

    cfg = load_config(TrainPolicyConfig, ROOT / "configs/policy/pushcube_state.yaml",
                      [f"--dataset.path={demos}", "--policy.history_input_noise=0.1"])
    _, data, policy = build_training(cfg)
    with torch.no_grad():
        for p in policy.net.parameters():
            p.add_(0.02 * torch.randn_like(p))
    policy.save_pretrained(tmp_path / "p")
    loaded = ActionFlowPolicy.from_pretrained(tmp_path / "p")
    batch = data.__getitems__([0, 10, 50])
    torch.manual_seed(3)
    a = policy.eval().predict_action_chunk(batch)
    torch.manual_seed(3)
    b = loaded.predict_action_chunk(batch)
    assert torch.equal(a, b)
    # And through the closed-loop interface.
    frames = [{"state": data.state[i], "qpos": data.qpos[i]} for i in range(10)]
    outs = []
    for pol in (policy, loaded):
        pol.reset()
        torch.manual_seed(5)
        outs.append(np.stack([pol.select_action(f) for f in frames]))
    assert np.array_equal(outs[0], outs[1])


# ----------------------------------------------------------------------------- bad input


def one_line_error(r):
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert lines and lines[-1].startswith("error: "), r.stderr[-2000:]
    return lines[-1]


def train_cli(demos, tmp_path, *extra):
    return run_tool("train_policy.py", "--config", ROOT / "configs/policy/pushcube_state.yaml",
                    "--output-dir", tmp_path / "run", f"--dataset.path={demos}", "--train.iterations=2",
                    "--eval.episodes=0", *extra)


@pytest.mark.slow
def test_truncated_h5_is_a_clear_error(demos, tmp_path):
    bad = tmp_path / "trunc.h5"
    data = demos.read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    shutil.copy(demos.with_suffix(".json"), bad.with_suffix(".json"))
    line = one_line_error(train_cli(bad, tmp_path))
    assert str(bad) in line and ("HDF5" in line or "truncated" in line)


def test_non_maniskill_h5_is_a_clear_error(tmp_path):
    bad = tmp_path / "other.h5"
    with h5py.File(bad, "w") as f:
        f["images"] = np.zeros((3, 4))
    from a2a_temporal.data.maniskill import read_demos

    with pytest.raises(DataError, match="other.json: missing"):
        read_demos(bad)
    bad.with_suffix(".json").write_text(json.dumps({"env_info": {"env_id": "X", "env_kwargs": {"obs_mode": "state"}},
                                                    "episodes": []}))
    with pytest.raises(DataError, match="no traj_"):
        read_demos(bad)
    bad.with_suffix(".json").write_text("{}")
    with pytest.raises(DataError, match="not ManiSkill trajectory metadata"):
        read_demos(bad)


@pytest.mark.slow
def test_control_mode_mismatch_is_a_clear_error(demos, tmp_path):
    line = one_line_error(train_cli(demos, tmp_path, "--policy.control_mode=pd_joint_delta_pos"))
    assert "pd_ee_delta_pos" in line and "pd_joint_delta_pos" in line and str(demos) in line


@pytest.mark.slow
def test_nan_actions_are_a_clear_error(demos, tmp_path):
    bad = tmp_path / "nan.h5"
    shutil.copy(demos, bad)
    shutil.copy(demos.with_suffix(".json"), bad.with_suffix(".json"))
    with h5py.File(bad, "a") as f:
        f["traj_1/actions"][5, 2] = np.nan
    line = one_line_error(train_cli(bad, tmp_path))
    assert "traj_1/actions" in line and "NaN" in line and "step 5" in line


def test_env_needing_download_fails_fast():
    from a2a_temporal.envs.maniskill import check_env_offline

    with pytest.raises(DataError, match="asset download"):
        check_env_offline("PickSingleYCB-v1")
    with pytest.raises(DataError, match="unknown ManiSkill env id"):
        check_env_offline("PushCubeX-v9")
    r = subprocess.run([sys.executable, str(TOOLS / "generate_demos.py"), "--env-id", "PickSingleYCB-v1",
                        "--num-demos", "1", "--out", "/tmp/never-written"], capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL, cwd=ROOT)
    line = one_line_error(r)
    assert "PickSingleYCB-v1" in line and "download" in line
    assert not Path("/tmp/never-written").exists()


@pytest.mark.slow
@pytest.mark.parametrize("env_id,control", [("PickCube-v1", "pd_ee_delta_pos"), ("StackCube-v1", "pd_ee_delta_pos"),
                                            ("PegInsertionSide-v1", "pd_joint_delta_pos"),
                                            ("PullCube-v1", "pd_ee_delta_pos"), ("LiftPegUpright-v1", "pd_joint_delta_pos")])
def test_generate_demos_for_each_supported_env(env_id, control, tmp_path):
    from a2a_temporal.data.maniskill import read_demos
    from a2a_temporal.envs.demos import make_dataset

    s = make_dataset(env_id, 1, "state", control, tmp_path / env_id, progress=False)
    meta, episodes = read_demos(s["path"])
    assert meta.env_id == env_id and meta.control_mode == control and len(episodes) == 1
    assert episodes[0].length > 10 and meta.qpos_dim == 9


def test_generate_demos_converts_with_several_processes(tmp_path):
    """--num-procs > 1 runs ManiSkill's replay with spawned workers: forked from the planning
    process they hung."""
    r = run_tool("generate_demos.py", "--env-id", "PushCube-v1", "--num-demos", 2, "--obs-mode", "state",
                 "--control-mode", "pd_ee_delta_pos", "--num-procs", 2, "--out", tmp_path / "two", "--quiet",
                 timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    from a2a_temporal.data.maniskill import read_demos

    meta, episodes = read_demos(Path(r.stdout.strip().splitlines()[-1]))
    assert len(episodes) == 2 and meta.control_mode == "pd_ee_delta_pos" and len(set(meta.episode_seeds)) == 2


@pytest.mark.slow
def test_latency_benchmark_tool(demos, tmp_path):
    out = tmp_path / "lat.json"
    r = run_tool("benchmark.py", "--config", ROOT / "configs/policy/pushcube_state.yaml", "--variants", "a2a:1",
                 "flow:4", "ddim:3", "--calls", 6, "--rounds", 2, "--json", out, f"--dataset.path={demos}")
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    rows = {row["variant"]: row for row in res["rows"]}
    assert rows["a2a:1"]["model_calls"] == 1 and rows["flow:4"]["model_calls"] == 4 and rows["ddim:3"]["model_calls"] == 3
    assert rows["a2a:1"]["ratio_to_reference"] == 1.0
    assert res["threads"] == 1 and res["calls_per_variant"] == 6
    assert out.with_suffix(".png").is_file()


@pytest.mark.slow
def test_training_cost_benchmark(demos, tmp_path):
    out = tmp_path / "cost.json"
    r = run_tool("benchmark.py", "train", "--config", ROOT / "configs/policy/pushcube_state.yaml", "--recipes", "a2a",
                 "flow", "--iterations", 4, "--rounds", 2, "--json", out, f"--dataset.path={demos}",
                 "--policy.backbone.width=32", "--policy.backbone.depth=1", "--train.batch_size=8")
    assert r.returncode == 0, r.stderr[-3000:]
    rows = {row["recipe"]: row for row in json.loads(out.read_text())["rows"]}
    assert rows["a2a"]["iterations_timed"] == rows["flow"]["iterations_timed"] == 4
    assert rows["a2a"]["ratio_to_first"] == 1.0 and rows["flow"]["cpu_s_per_iteration"] > 0
    assert rows["flow"]["budget_iterations"] == 2500 and rows["flow"]["space"] == "action"
    r = run_tool("benchmark.py", "train", "--recipes", "nope", f"--dataset.path={demos}")
    assert r.returncode == 2 and "nope" in r.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_rgb_policy_end_to_end(tmp_path):
    """64 px camera demos -> a few training steps with the CPU-sized GroupNorm ResNet -> closed loop."""
    out = tmp_path / "rgb"
    r = run_tool("generate_demos.py", "--env-id", "PickCube-v1", "--num-demos", 2, "--obs-mode", "rgb",
                 "--image-size", 64, "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    h5 = Path(r.stdout.strip().splitlines()[-1])
    from a2a_temporal.data.maniskill import read_demos

    meta, episodes = read_demos(h5)
    assert meta.obs_mode == "rgb" and meta.image_size == 64 and episodes[0].image.shape[1:] == (64, 64, 3)
    assert episodes[0].image.shape[0] == episodes[0].state.shape[0]
    r = run_tool("train_policy.py", "--config", ROOT / "configs/policy/pickcube_rgb.yaml", "--output-dir",
                 tmp_path / "run", f"--dataset.path={h5}", "--train.iterations=3", "--train.batch_size=4",
                 "--train.eval_every=0", "--eval.episodes=1", "--eval.num_envs=1", "--eval.max_episode_steps=9",
                 "--policy.backbone.width=32", "--policy.backbone.depth=1", "--policy.image_aux_weight=1.0",
                 "--train.log_every=1")
    assert r.returncode == 0, r.stderr[-3000:]
    from a2a_temporal.heads.action import ActionFlowPolicy

    policy = ActionFlowPolicy.from_pretrained(tmp_path / "run" / "checkpoints" / "last" / "pretrained_model")
    assert policy.config.obs_mode == "rgb" and policy.config.image_size == 64 and policy.obs_encoder.image is not None
    assert isinstance(policy.obs_encoder.image.bn1, torch.nn.GroupNorm)
    # the auxiliary loss read the cube's saved positions and trained the position head
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(row.get("loss_image_aux", 0) > 0 for row in logged) and policy.aux_head is not None
    _, with_aux = read_demos(h5, aux_actor="cube")
    assert with_aux[0].aux.shape == (episodes[0].state.shape[0], 3) and np.abs(with_aux[0].aux[0, :2]).max() <= 0.1
    with pytest.raises(DataError, match="env_states/actors/nope"):
        read_demos(h5, aux_actor="nope")
    # the cube-position probe of the image features: fitted on the training scenes, scored on others
    def probe(test_demos):
        return subprocess.run([sys.executable, str(ROOT / "scripts/image_probe.py"), "--train-demos", str(h5),
                               "--test-demos", str(test_demos), "--checkpoint", f"p={tmp_path / 'run/checkpoints/last'}",
                               "--frames", "3", "--untrained", "--json", str(tmp_path / "probe.json")],
                              capture_output=True, text=True, cwd=ROOT, timeout=600)

    r = probe(h5)
    assert r.returncode == 2 and "is also in" in r.stderr.strip().splitlines()[-1]
    r = run_tool("generate_demos.py", "--env-id", "PickCube-v1", "--num-demos", 1, "--obs-mode", "rgb",
                 "--image-size", 64, "--seed", 100_000, "--out", tmp_path / "rgb_new", "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    r = probe(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads((tmp_path / "probe.json").read_text())
    assert set(out["rows"]) == {"p", "p (untrained)"} and out["train_frames"] == 6 and out["test_frames"] == 3
    assert all(row["spread_cm"] > 0 and row["test_cm"] > 0 for row in out["rows"].values())


@pytest.mark.slow
def test_batched_maniskill_adapter_matches_the_cpu_env():
    """The adapter behind --sim-backend gpu, run on ManiSkill's physx_cpu (1 env), gives the same
    observations, success flags and dynamics as the per-process CPU environment."""
    from a2a_temporal.envs.evaluate import BatchedManiSkillEnvs
    from a2a_temporal.envs.maniskill import make_env

    kw = dict(obs_mode="state", control_mode="pd_ee_delta_pos", max_episode_steps=10)
    batched = BatchedManiSkillEnvs("PushCube-v1", 1, "physx_cpu", **kw)
    single = make_env("PushCube-v1", cpu_wrapper=True, **kw)
    try:
        ob, _ = batched.reset(seed=[1_000_005])
        os_, _ = single.reset(seed=1_000_005)
        assert ob.shape == (1, os_.shape[0]) and np.allclose(ob[0], os_, atol=1e-5)
        rng = np.random.default_rng(0)
        for _ in range(5):
            a = rng.uniform(-1, 1, (1, 4)).astype(np.float32)
            ob, _, _, _, info = batched.step(a)
            os_, _, _, _, info_s = single.step(a[0])
            assert info["success"].shape == (1,) and bool(info["success"][0]) == bool(info_s["success"])
        assert np.allclose(ob[0], os_, atol=1e-4)
    finally:
        batched.close()
        single.close()


def test_gpu_backend_is_refused_without_cuda():
    from a2a_temporal.envs.evaluate import evaluate

    from test_policy_data import tiny_policy

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    policy, _ = tiny_policy()
    with pytest.raises(Exception, match="needs a CUDA GPU"):
        evaluate(policy, episodes=1, sim_backend="gpu")


@pytest.mark.slow
def test_recovery_demos_perturb_the_executed_arm_targets(demos, tmp_path):
    """--action-noise: the recorded (executed) arm targets carry the noise, the gripper command
    does not, and the perturbed episodes still convert to the requested control mode."""
    from a2a_temporal.data.maniskill import read_demos
    from a2a_temporal.envs.demos import PlannerActionNoise, make_dataset

    with pytest.raises(DataError, match="rho"):
        PlannerActionNoise(None, 0.02, rho=1.0)
    s = make_dataset("PushCube-v1", 2, "state", "pd_ee_delta_pos", tmp_path / "noisy", progress=False,
                     action_noise=0.05)
    assert s["action_noise"] == 0.05 and len(read_demos(s["path"])[1]) == 2

    def raw_actions(raw):
        with h5py.File(raw) as f:
            return [f[k]["actions"][:] for k in sorted(f) if k.startswith("traj_")]

    clean, noisy = raw_actions(demos.parent / "motionplanning.h5"), raw_actions(tmp_path / "noisy" / "motionplanning.h5")
    rough = lambda acts: np.mean([np.abs(np.diff(a[:, :7], n=2, axis=0)).mean() for a in acts])  # noqa: E731
    assert rough(noisy) > 5 * rough(clean)  # planned paths are smooth; the executed noisy ones are not
    for a in noisy:
        assert set(np.unique(a[:, 7])) <= {-1.0, 1.0}  # the gripper command is the planner's own


@pytest.mark.slow
def test_displacement_demos_move_the_object_and_the_planner_solves_again(tmp_path):
    """--displace: the cube jumps by the recorded distance right after the recorded action, in the
    converted (pd_ee_delta_pos) episodes too, nowhere else, and the episodes still succeed."""
    from a2a_temporal.data.maniskill import read_demos
    from a2a_temporal.envs.demos import PlannerDisplacement, make_dataset

    with pytest.raises(DataError, match="PegInsertionSide-v1"):
        PlannerDisplacement(None, "PegInsertionSide-v1", 4.0)
    with pytest.raises(DataError, match="distance > 0"):
        PlannerDisplacement(None, "PushCube-v1", 0.0)
    s = make_dataset("PushCube-v1", 2, "state", "pd_ee_delta_pos", tmp_path / "moved", progress=False,
                     displace_cm=6.0, displace_prob=1.0, displace_steps=(20, 40))
    assert s["displaced_demos"] == 2 and len(read_demos(s["path"])[1]) == 2
    meta = json.loads(Path(s["path"]).with_suffix(".json").read_text())
    with h5py.File(s["path"]) as f:
        for ep in meta["episodes"]:
            event = s["displacements"][str(ep["episode_seed"])]
            assert 20 <= event["step"] <= 40 and 0.02 - 1e-6 <= event["distance_m"] <= 0.06 + 1e-6
            traj = f[f"traj_{ep['episode_id']}"]
            xy = traj["env_states"]["actors"]["cube"][:, :2]
            jumps = np.linalg.norm(np.diff(xy, axis=0), axis=1)
            assert int(jumps.argmax()) == event["step"]
            assert abs(jumps.max() - np.linalg.norm(event["vector_xy"])) < 3e-3
            assert np.sort(jumps)[-2] < 0.01  # every other step: the ordinary pushing motion
            assert bool(traj["success"][-1]) and len(traj["actions"]) > event["step"] + 10  # solved again


def test_stage_flags_come_from_the_real_task_info():
    """StackCube's sub-goal flags are picked out of a real vector-env step (masks and success
    dropped), and the per-episode records turn into rates."""
    from functools import partial

    import gymnasium as gym
    from gymnasium.vector import AutoresetMode

    from a2a_temporal.envs.evaluate import stage_flags, stage_rates
    from a2a_temporal.envs.maniskill import make_env

    fn = partial(make_env, "StackCube-v1", cpu_wrapper=True, obs_mode="state", control_mode="pd_ee_delta_pos",
                 max_episode_steps=5)
    envs = gym.vector.SyncVectorEnv([fn, fn], autoreset_mode=AutoresetMode.DISABLED)
    try:
        envs.reset(seed=[1_000_000, 1_000_001])
        _, _, _, _, info = envs.step(np.zeros((2, 4), dtype=np.float32))
    finally:
        envs.close()
    flags = stage_flags(info, 2)
    assert set(flags) == {"is_cubeA_grasped", "is_cubeA_on_cubeB", "is_cubeA_static"}
    assert all(v.dtype == bool and v.shape == (2,) for v in flags.values())
    assert not flags["is_cubeA_grasped"].any() and not flags["is_cubeA_on_cubeB"].any()  # open gripper, no motion
    records = [{"stages_reached": {"is_cubeA_grasped": True, "is_cubeA_on_cubeB": False}},
               {"stages_reached": {"is_cubeA_grasped": True, "is_cubeA_on_cubeB": True}},
               {"stages_reached": {"is_cubeA_grasped": False, "is_cubeA_on_cubeB": False}},
               {"stages_reached": {"is_cubeA_grasped": True, "is_cubeA_on_cubeB": False}}]
    assert stage_rates(records) == {"is_cubeA_grasped": 0.75, "is_cubeA_on_cubeB": 0.25}
