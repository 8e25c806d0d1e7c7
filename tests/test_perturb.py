"""Robustness suites (a2a_temporal.envs.perturb): specifications, errors, and on the real simulator
that each level changes the environment as specified and that reruns are identical."""
import json
from pathlib import Path
import math

import numpy as np
import pytest

from a2a_temporal.envs.perturb import (DISPLACE_STEP_RANGE, SUITES, TASKS, PerturbWrapper, check_suite, describe,
                                       direction_breakdown, episode_rng, placement_horizon, push_outcomes)
from a2a_temporal.errors import ConfigError

# PushCube-v1 state layout (pd_ee_delta_pos): qpos 0:9, qvel 9:18, tcp_pose 18:25, goal_pos 25:28, obj_pose 28:35
PUSH_STATE_DIM, OBJ, GOAL, TCP = 35, slice(28, 30), slice(25, 27), slice(18, 21)
H = 20


# ----------------------------------------------------------------------------- no simulator

def test_specifications_and_one_line_errors():
    assert list(SUITES) == ["spawn", "size", "displace", "action_noise", "obs_noise", "delay", "visual"]
    assert check_suite("displace", 4.0) == ("displace", 4) and check_suite("spawn", "1.5") == ("spawn", 1.5)
    cases = [(("foo", 1), "unknown robustness suite 'foo'; valid suites: spawn, size, displace"),
             (("delay", 3), "suite 'delay' has no level 3; valid levels: 0, 1, 2"),
             (("spawn", None), "suite 'spawn' needs a level; valid levels: 1, 1.5, 2"),
             (("size", 1.2, "StackCube-v1"), "suite 'size' is not supported for StackCube-v1"),
             (("spawn", 2, "PegInsertionSide-v1"), "suite 'spawn' has no specification for PegInsertionSide-v1"),
             (("visual", 1, "PushCube-v1", "state"), "suite 'visual' perturbs camera images and needs an rgb policy")]
    for args, msg in cases:
        with pytest.raises(ConfigError) as e:
            check_suite(*args)
        assert msg in str(e.value) and "\n" not in str(e.value)
    check_suite("visual", 3, "PushCube-v1", "rgb")
    check_suite("delay", 2, "PegInsertionSide-v1", "state")  # task-independent suites work anywhere
    assert "6 cm" in describe("displace", 6, "PushCube-v1") and "goal" in describe("spawn", 2, "PickCube-v1")
    # the generator is a function of (suite, level, seed) only
    a, b = episode_rng("displace", 4, 7).random(5), episode_rng("displace", 4, 7).random(5)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, episode_rng("displace", 6, 7).random(5))
    assert not np.array_equal(a, episode_rng("displace", 4, 8).random(5))
    assert not np.array_equal(a, episode_rng("obs_noise", 4, 7).random(5))


def test_displace_step_is_placed_on_the_standard_horizon_not_the_episode_length():
    # a longer evaluation gives more time to recover from the same push; a shorter one keeps it inside
    assert placement_horizon("PushCube-v1") == 100
    assert placement_horizon("PushCube-v1", 150) == 100
    assert placement_horizon("PushCube-v1", 40) == 40
    assert placement_horizon("StackCube-v1", 400) == 200



def test_push_outcomes_split_episodes_at_their_first_success():
    """A push counts as before success only when it came before the first success step; a push
    never applied, or applied at or after that step, does not."""
    def rec(ok, length, step):
        return {"success_once": ok, "episode_length": length, "perturbation": {"suite": "displace", "applied_step": step}}
    recs = [rec(True, 60, 40), rec(False, 100, 30), rec(True, 50, 50), rec(True, 50, 80), rec(True, 70, None),
            rec(False, 100, None)]
    assert push_outcomes(recs) == {"pushed_before_success": {"episodes": 2, "success_once": 1},
                                   "not_pushed_before_success": {"episodes": 4, "success_once": 3}}
    assert push_outcomes([{"success_once": True, "episode_length": 5, "perturbation": {"suite": "delay"}}]) is None


def test_displace_outcomes_script_reads_per_episode_files_and_refuses_others(tmp_path):
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[1]
    good = tmp_path / "a_displace4.json"
    good.write_text(json.dumps({"suite": "displace", "level": 4, "per_episode": [
        {"success_once": False, "episode_length": 200, "perturbation": {"suite": "displace", "applied_step": 90}},
        {"success_once": True, "episode_length": 80, "perturbation": {"suite": "displace", "applied_step": None}}]}))
    out = tmp_path / "o.json"
    r = subprocess.run([sys.executable, str(root / "scripts/displace_outcomes.py"), str(good), "--json", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    row = json.loads(out.read_text())["files"][str(good)]
    assert row["pushed_before_success"] == {"episodes": 1, "success_once": 0}
    assert row["not_pushed_before_success"] == {"episodes": 1, "success_once": 1}
    bad = tmp_path / "sweep.json"
    bad.write_text(json.dumps({"suite": "displace", "results": {}}))
    r = subprocess.run([sys.executable, str(root / "scripts/displace_outcomes.py"), str(bad)], capture_output=True, text=True)
    assert r.returncode == 2 and "sweep.json" in r.stderr and "per_episode" in r.stderr


def test_fisher_exact_matches_known_tables_and_refuses_bad_counts():
    from a2a_temporal.metrics.stats import fisher_exact
    assert abs(fisher_exact(3, 4, 1, 4) - 0.4857142857) < 1e-9  # the tea-tasting table
    assert abs(fisher_exact(25, 90, 8, 90) - 0.0017435675) < 1e-9  # scipy.stats.fisher_exact's value
    assert fisher_exact(5, 10, 5, 10) == 1.0 and fisher_exact(1, 4, 3, 4) == fisher_exact(3, 4, 1, 4)
    assert fisher_exact(10, 10, 0, 10) < 1e-4
    with pytest.raises(ValueError, match="successes=5"):
        fisher_exact(5, 4, 1, 4)


def test_suite_pooled_script_pools_perturbed_levels_and_refuses_mixed_suites(tmp_path):
    import subprocess
    import sys
    root = Path(__file__).resolve().parents[1]

    def sweep(name, suite, rates, episodes=30):
        f = tmp_path / name
        f.write_text(json.dumps({"suite": suite, "levels": [0, 1, 2], "nominal_level": 0, "results": {
            ck: [{"success_once": k / episodes, "episodes": episodes} for k in ks] for ck, ks in rates.items()}}))
        return str(f)

    a = sweep("a.json", "visual", {"x": [30, 20, 5]})
    b = sweep("b.json", "visual", {"y": [29, 2, 1]})
    out = tmp_path / "o.json"
    r = subprocess.run([sys.executable, str(root / "scripts/suite_pooled.py"), a, b, "--json", str(out)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    d = json.loads(out.read_text())
    assert d["pools"]["x"] == {"nominal": [30, 30], "perturbed": [25, 60]}
    assert d["pools"]["y"] == {"nominal": [29, 30], "perturbed": [3, 60]}
    (cmp,) = d["comparisons"]
    assert cmp["a"] == "x" and cmp["b"] == "y" and cmp["fisher_p"] < 1e-4
    c = sweep("c.json", "delay", {"z": [30, 1, 1]})
    r = subprocess.run([sys.executable, str(root / "scripts/suite_pooled.py"), a, c], capture_output=True, text=True)
    assert r.returncode == 2 and "c.json" in r.stderr and "delay" in r.stderr
    r = subprocess.run([sys.executable, str(root / "scripts/suite_pooled.py"), a, b, "--pair", "x:w"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "x:w" in r.stderr


def test_direction_breakdown_sorts_pushes_by_their_angle_to_the_goal():
    recs = [{"success_once": ok, "perturbation": {"angle_to_goal_deg": a}}
            for ok, a in ((True, 10.0), (False, 44.9), (True, 45.0), (False, 134.0), (False, 180.0), (True, None))]
    assert direction_breakdown(recs) == {"toward_goal": {"episodes": 2, "success_once": 1},
                                         "sideways": {"episodes": 2, "success_once": 1},
                                         "away_from_goal": {"episodes": 1, "success_once": 0}}
    assert direction_breakdown([{"success_once": True, "perturbation": {"suite": "spawn"}}]) is None


# ----------------------------------------------------------------------------- simulator

@pytest.fixture(scope="module")
def push_env():
    from a2a_temporal.envs.maniskill import make_env

    env = make_env("PushCube-v1", obs_mode="state", control_mode="pd_ee_delta_pos", max_episode_steps=H,
                   cpu_wrapper=True)
    yield env
    env.close()


def wrap(env, suite, level, env_id="PushCube-v1", obs_mode="state"):
    return PerturbWrapper(env, suite, level, env_id, obs_mode=obs_mode, horizon=H)


def rollout(env, seed, actions):
    obs, _ = env.reset(seed=seed)
    out, executed = [obs], []
    for a in actions:
        obs, *_ = env.step(a)
        out.append(obs)
        executed.append(env.last_executed_action.copy())
    return np.stack(out), np.stack(executed), env.perturbation_record()


def wiggle(n=8):
    t = np.arange(n)[:, None]
    return (0.6 * np.sin(t * np.array([[0.7, 1.3, 0.4, 2.0]]) + np.array([[0.0, 1.0, 2.0, 0.5]]))).astype(np.float32)


@pytest.mark.slow
def test_spawn_pushcube_scales_offsets_and_keeps_goal_offset(push_env):
    nominal, seeds, outside = wrap(push_env, "spawn", 1.0), range(6), 0
    for level in (1.5, 2.0):
        env = wrap(push_env, "spawn", level)
        for s in seeds:
            o0, _ = nominal.reset(seed=s)
            o, _ = env.reset(seed=s)
            assert np.allclose(o[OBJ], level * o0[OBJ], atol=1e-6)  # the scaled offset, exactly
            assert np.allclose(o[GOAL] - o[OBJ], o0[GOAL] - o0[OBJ], atol=1e-6)  # goal keeps (+0.2, 0)
            assert np.allclose(o[:25], o0[:25])  # the robot is untouched
            base = env.unwrapped  # success is ManiSkill's evaluate() against the moved goal actor
            assert np.allclose(base.goal_region.pose.p[0, :2].numpy(), o[GOAL], atol=1e-6)
            rec = env.perturbation_record()
            assert rec["scale"] == level and np.allclose(rec["obj_xy"], o[OBJ], atol=1e-6)
            outside += level == 2.0 and bool(np.abs(o[OBJ]).max() > 0.1)
            o2, _ = env.reset(seed=s)
            assert np.array_equal(o, o2) and env.perturbation_record() == rec
    assert outside >= 1  # level 2 leaves the demos' region [-0.1, 0.1]^2 on some seeds


@pytest.mark.slow
def test_displace_moves_object_at_recorded_step(push_env):
    zeros = np.zeros((H, 4), np.float32)  # the robot holds still: only the displacement moves the cube
    obs, _, rec = rollout(wrap(push_env, "displace", 4), 5, zeros)
    lo, hi = round(DISPLACE_STEP_RANGE[0] * H), round(DISPLACE_STEP_RANGE[1] * H)
    k = rec["applied_step"]
    assert rec["planned_step"] == k and lo <= k <= hi and rec["step_range"] == [lo, hi]
    jumps = np.linalg.norm(np.diff(obs[:, OBJ], axis=0), axis=1)
    assert np.argmax(jumps) + 1 == k and abs(jumps[k - 1] - 0.04) < 1e-4  # obs index k = after step k
    assert np.delete(jumps, k - 1).max() < 1e-4
    assert np.allclose(obs[k, OBJ] - obs[k - 1, OBJ], rec["vector_xy"], atol=1e-4)
    assert math.isclose(np.linalg.norm(rec["vector_xy"]), 0.04, rel_tol=1e-6)
    to_goal = np.subtract(rec["goal_xy"], rec["pos_before"][:2])  # PushCube's goal lies ahead of the cube
    cos = np.dot(rec["vector_xy"], to_goal) / (np.linalg.norm(rec["vector_xy"]) * np.linalg.norm(to_goal))
    assert math.isclose(rec["angle_to_goal_deg"], math.degrees(math.acos(cos)), abs_tol=1e-6)
    obs2, _, rec2 = rollout(wrap(push_env, "displace", 4), 5, zeros)
    assert rec2 == rec and np.array_equal(obs, obs2)
    recs = []
    env6 = wrap(push_env, "displace", 6)
    for s in range(3):
        env6.reset(seed=s)
        recs.append((env6.perturbation_record()["planned_step"], env6.perturbation_record()["direction_deg"]))
    assert len(set(recs)) == 3  # the step and direction depend on the seed
    obs0, _, rec0 = rollout(wrap(push_env, "displace", 0), 5, zeros)
    assert rec0["applied_step"] is None and np.abs(np.diff(obs0[:, OBJ], axis=0)).max() < 1e-4


@pytest.mark.slow
def test_action_obs_noise_and_delay(push_env):
    acts = wiggle()
    nom_obs, nom_exec, _ = rollout(wrap(push_env, "action_noise", 0), 3, acts)
    assert np.array_equal(nom_exec, acts)  # level 0 executes the policy's actions
    obs, exe, rec = rollout(wrap(push_env, "action_noise", 0.1), 3, acts)
    assert np.array_equal(obs[0], nom_obs[0])  # same initial state
    assert np.abs(exe - acts).min() > 0 and exe.min() >= -1 and exe.max() <= 1
    assert rec["std"] == pytest.approx([0.2] * 4) and rec["steps"] == len(acts)
    assert not np.allclose(obs[-1, TCP], nom_obs[-1, TCP], atol=1e-4)  # the noisy actions were executed
    obs2, exe2, rec2 = rollout(wrap(push_env, "action_noise", 0.1), 3, acts)
    assert np.array_equal(exe, exe2) and np.array_equal(obs, obs2) and rec == rec2

    noisy, _, rec = rollout(wrap(push_env, "obs_noise", 0.01), 3, acts)
    diff = noisy - nom_obs  # the simulator is not changed: same states, noisy view
    assert 0.007 < diff.std() < 0.013 and abs(diff.mean()) < 0.003 and rec["std"] == 0.01
    noisy2, _, _ = rollout(wrap(push_env, "obs_noise", 0.01), 3, acts)
    assert np.array_equal(noisy, noisy2)

    for k in (1, 2):
        delayed, _, rec = rollout(wrap(push_env, "delay", k), 3, acts)
        assert rec["delay_steps"] == k
        for t in range(len(delayed)):
            assert np.allclose(delayed[t], nom_obs[max(0, t - k)], atol=1e-6), (k, t)


@pytest.mark.slow
def test_pickcube_spawn_goal_and_size():
    from a2a_temporal.envs.maniskill import make_env

    env = make_env("PickCube-v1", obs_mode="state", control_mode="pd_ee_delta_pos", max_episode_steps=H,
                   cpu_wrapper=True)
    try:
        base = env.unwrapped
        nominal, scaled = wrap(env, "spawn", 1.0, "PickCube-v1"), wrap(env, "spawn", 2.0, "PickCube-v1")
        for s in range(3):
            nominal.reset(seed=s)
            cube0, goal0 = base.cube.pose.p[0].numpy().copy(), base.goal_site.pose.p[0].numpy().copy()
            scaled.reset(seed=s)
            cube, goal = base.cube.pose.p[0].numpy(), base.goal_site.pose.p[0].numpy()
            assert np.allclose(cube[:2], 2 * cube0[:2], atol=1e-6) and np.isclose(cube[2], cube0[2])
            assert np.allclose(goal[:2], 2 * goal0[:2], atol=1e-6) and np.isclose(goal[2], goal0[2])
        import sapien

        sized = wrap(env, "size", 1.2, "PickCube-v1")
        o, info = sized.reset(seed=1)
        box = base.cube._objs[0].find_component_by_type(sapien.physx.PhysxRigidDynamicComponent).collision_shapes[0]
        assert np.allclose(box.half_size, 0.024) and np.isclose(base.cube.pose.p[0, 2].item(), 0.024)
        assert sized.perturbation_record()["half_size"] == pytest.approx(0.024)
        o2, _ = sized.reset(seed=1)
        assert np.array_equal(o, o2)
        # displace waits for a lifted / grasped cube; a resting one moves at the planned step
        moved = wrap(env, "displace", 6, "PickCube-v1")
        _, _, rec = rollout(moved, 2, np.zeros((H, 4), np.float32))
        assert rec["applied_step"] == rec["planned_step"] and not rec["waited_for_release"]
        assert math.isclose(np.linalg.norm(np.subtract(rec["pos_after"], rec["pos_before"])), 0.06, rel_tol=1e-5)
    finally:
        env.close()
    env = make_env("StackCube-v1", obs_mode="state", control_mode="pd_ee_delta_pos", max_episode_steps=H,
                   cpu_wrapper=True)
    try:  # two cubes, no goal: both offsets scaled, so they stay apart
        base = env.unwrapped
        wrap(env, "spawn", 1.0, "StackCube-v1").reset(seed=4)
        a0, b0 = base.cubeA.pose.p[0].numpy().copy(), base.cubeB.pose.p[0].numpy().copy()
        rec_env = wrap(env, "spawn", 1.5, "StackCube-v1")
        rec_env.reset(seed=4)
        assert np.allclose(base.cubeA.pose.p[0, :2].numpy(), 1.5 * a0[:2], atol=1e-6)
        assert np.allclose(base.cubeB.pose.p[0, :2].numpy(), 1.5 * b0[:2], atol=1e-6)
        assert set(rec_env.perturbation_record()) >= {"cubeA_xy", "cubeB_xy", "cubeA_xy_nominal"}
    finally:
        env.close()


@pytest.mark.slow
def test_visual_levels_change_the_image_identically_on_rerun():
    from a2a_temporal.envs.maniskill import make_env

    env = make_env("PushCube-v1", obs_mode="rgb", control_mode="pd_ee_delta_pos", max_episode_steps=H,
                   image_size=32, cpu_wrapper=True)
    try:
        base = env.unwrapped
        o, _ = wrap(env, "visual", 0, obs_mode="rgb").reset(seed=3)
        img0 = o["sensor_data"]["base_camera"]["rgb"].astype(int)
        cam = base._sensors["base_camera"].camera
        pose0 = cam._render_cameras[0].get_local_pose()
        vis = wrap(env, "visual", 3, obs_mode="rgb")
        o, _ = vis.reset(seed=3)
        img3, rec = o["sensor_data"]["base_camera"]["rgb"].astype(int), vis.perturbation_record()
        assert np.abs(img3 - img0).mean() > 10
        assert abs(abs(rec["light_factor"] - 1) - 0.6) < 1e-9 and len(rec["distractors"]) == 3
        assert all(f"perturb_distractor_{i}" in base.scene.actors for i in range(3))
        pose = cam._render_cameras[0].get_local_pose()
        assert math.isclose(np.linalg.norm(pose.p - pose0.p), 0.04, rel_tol=1e-5)
        assert np.allclose(rec["cameras"]["base_camera"]["shift_m"], pose.p - pose0.p, atol=1e-6)
        o, _ = vis.reset(seed=4)
        assert vis.perturbation_record() != rec
        o, _ = vis.reset(seed=3)
        assert np.array_equal(o["sensor_data"]["base_camera"]["rgb"].astype(int), img3)
        assert vis.perturbation_record() == rec
    finally:
        env.close()


def tiny_push_policy():
    import torch

    from a2a_temporal.backbone import TransformerConfig
    from a2a_temporal.heads.action import ActionFlowPolicy, PolicyConfig

    cfg = PolicyConfig(env_id="PushCube-v1", obs_mode="state", control_mode="pd_ee_delta_pos",
                       state_dim=PUSH_STATE_DIM, qpos_dim=9, action_dim=4, n_obs_steps=2, n_hist=4, horizon=4,
                       n_action_steps=3, hidden_dim=32, latent_dim=8, latent_tokens=2,
                       backbone=TransformerConfig(preset="tiny", width=32, depth=1))
    policy = ActionFlowPolicy(cfg)
    rng = np.random.default_rng(0)
    policy.normalizer.fit({"state": rng.normal(size=(64, PUSH_STATE_DIM)), "qpos": rng.normal(size=(64, 9)),
                           "action": rng.uniform(-1, 1, size=(64, 4))})
    torch.manual_seed(0)
    return policy.eval()


@pytest.mark.slow
def test_evaluator_records_suite_and_sweep_plots(tmp_path):
    from a2a_temporal.envs.evaluate import evaluate
    from a2a_temporal.envs.robustness import plot_sweep, sweep

    policy = tiny_push_policy()
    with pytest.raises(ConfigError, match="suite 'delay' has no level 5; valid levels: 0, 1, 2"):
        evaluate(policy, episodes=1, suite="delay", level=5, progress=False)
    out = tmp_path / "eval.json"
    res = evaluate(policy, episodes=2, num_envs=2, max_episode_steps=10, seed=1_000_003, suite="displace", level=2,
                   out_json=out, progress=False)
    saved = json.loads(out.read_text())
    assert saved["suite"] == "displace" and saved["level"] == 2 and "2 cm" in saved["suite_spec"]
    assert res["complete"] and [e["seed"] for e in saved["per_episode"]] == [1_000_003, 1_000_004]
    lines = [json.loads(x) for x in out.with_name("eval.episodes.jsonl").read_text().splitlines()]
    for ep in lines:  # the per-episode record came back from the env subprocess
        p = ep["perturbation"]
        assert ep["suite"] == "displace" and p["seed"] == ep["seed"] and 2 <= p["planned_step"] <= 6
        assert p["distance_m"] == 0.02 and (p["applied_step"] is None or p["applied_step"] >= p["planned_step"])
    assert lines[0]["perturbation"] != lines[1]["perturbation"]

    result = sweep({"tiny": policy}, "delay", levels=[0, 2], episodes=1, num_envs=1, max_episode_steps=4,
                   out_dir=tmp_path / "sweep")
    rows = result["results"]["tiny"]
    assert [r["level"] for r in rows] == [0, 2] and all(0 <= r["success_once"] <= 1 for r in rows)
    assert (tmp_path / "sweep" / "sweep_delay.json").is_file() and (tmp_path / "sweep" / "tiny_delay2.json").is_file()
    assert json.loads((tmp_path / "sweep" / "tiny_delay2.json").read_text())["suite"] == "delay"
    result["results"]["other"] = [dict(r, success_once=0.5, episodes=10) for r in rows]  # a second line
    png = plot_sweep(result, tmp_path / "sweep.png")
    assert png.is_file() and png.stat().st_size > 1000
    with pytest.raises(ConfigError, match="suite 'visual' perturbs camera images"):
        sweep({"tiny": policy}, "visual", episodes=1)


@pytest.mark.slow
def test_benchmark_robustness_subcommand(demos, tmp_path):
    from conftest import run_tool

    ROOT = Path(__file__).resolve().parents[1]
    r = run_tool("train_policy.py", "--config", ROOT / "configs/policy/pushcube_state.yaml", "--output-dir",
                 tmp_path / "run", f"--dataset.path={demos}", "--train.iterations=3", "--train.batch_size=8",
                 "--eval.episodes=0", "--policy.backbone.width=32", "--policy.backbone.depth=1",
                 "--policy.hidden_dim=32")
    assert r.returncode == 0, r.stderr[-2000:]
    out = tmp_path / "rob" / "sweep.json"
    ckpt = tmp_path / "run" / "checkpoints" / "last"
    r = run_tool("benchmark.py", "robustness", "--checkpoint", f"a={ckpt}:1", "--checkpoint", f"b={ckpt}:2/3",
                 "--suite", "action_noise", "--levels", "0", "0.1", "--episodes", 2, "--num-envs", 1,
                 "--max-episode-steps", 6, "--json", out)
    assert r.returncode == 0, r.stderr[-2000:]
    res = json.loads(out.read_text())
    assert set(res["results"]) == {"a", "b"} and res["levels"] == [0, 0.1] and res["nominal_level"] == 0
    assert [row["num_inference_steps"] for row in res["results"]["b"]] == [2, 2]
    # /3: three actions per call for b, a keeps its training setting (8)
    assert [row["n_action_steps"] for row in res["results"]["b"]] == [3, 3] and res["n_action_steps"] == {"b": 3}
    assert [row["n_action_steps"] for row in res["results"]["a"]] == [8, 8]
    assert out.with_suffix(".png").is_file()
    r = run_tool("benchmark.py", "robustness", "--checkpoint", f"a={ckpt}", "--suite", "delay")
    assert r.returncode == 2 and "STEPS" in r.stderr.strip().splitlines()[-1]
    r = run_tool("benchmark.py", "robustness", "--checkpoint", f"a={ckpt}:1/0", "--suite", "delay")
    assert r.returncode == 2 and "/N (actions executed per call) must be a positive integer, got '0'" in r.stderr
