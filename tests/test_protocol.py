"""The evaluation protocol: seed ranges, end-of-episode padding per control mode, auxiliary
losses reaching each objective through its own sampler, and tables built from result files."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from a2a_temporal.backbone import TransformerConfig
from a2a_temporal.data.windows import PolicyWindows, end_padding_for
from a2a_temporal.envs.evaluate import check_seeds, evaluate
from a2a_temporal.envs.seeds import SPLITS, TEST_SEED_START, VALIDATION_SEED_START, check_within, split_of
from a2a_temporal.errors import ConfigError
from a2a_temporal.flow import ObjectiveConfig
from a2a_temporal.heads.action import ActionFlowPolicy, PolicyConfig
from a2a_temporal.metrics.stats import wilson_interval

from test_policy_data import episode, tiny_policy

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- seeds


def test_seed_ranges_are_disjoint_and_ordered():
    (d0, d1), (v0, v1), (t0, t1) = SPLITS["demos"], SPLITS["validation"], SPLITS["test"]
    assert d1 == v0 and v1 == t0 == TEST_SEED_START and t1 is None and d0 == 0
    assert split_of(0) == "demos" and split_of(VALIDATION_SEED_START) == "validation"
    assert split_of(TEST_SEED_START - 1) == "validation" and split_of(TEST_SEED_START) == "test"
    with pytest.raises(ValueError, match="leave the validation range"):
        check_within("validation", TEST_SEED_START - 10, 20, "eval.seed")


def test_validation_config_can_never_reach_test_seeds():
    from a2a_temporal.policy_setup import PolicyEvalConfig

    ev = PolicyEvalConfig()
    assert ev.seed == VALIDATION_SEED_START
    seeds = set(range(ev.seed, ev.seed + ev.episodes))
    assert all(split_of(s) == "validation" for s in seeds)
    with pytest.raises(ValueError, match="validation range"):
        PolicyEvalConfig(seed=TEST_SEED_START)
    with pytest.raises(ValueError, match="validation range"):
        PolicyEvalConfig(seed=0)  # the demo range


def test_evaluator_refuses_a_training_demo_seed():
    policy, _ = tiny_policy()
    policy.config.demo_seeds = [0, 1, 2, 5, 1_000_003]
    with pytest.raises(ConfigError, match=r"evaluation seed 1000003 is one of this policy's training-demo seeds"):
        evaluate(policy, episodes=10, seed=TEST_SEED_START)
    with pytest.raises(ConfigError, match=r"seed 5 .*--allow-demo-seeds"):
        evaluate(policy, episodes=3, seed=5)
    check_seeds(policy, [5, 6], allow_demo_seeds=True)  # a deliberate replay check
    check_seeds(policy, [7, 8])


def test_zero_inference_steps_is_an_error_not_the_default():
    policy, _ = tiny_policy()
    with pytest.raises(ConfigError, match="num_inference_steps must be a positive integer"):
        evaluate(policy, episodes=1, num_inference_steps=0)
    with pytest.raises(ValueError, match="positive integer"):
        policy.objective.sample(policy.net, torch.zeros(1, 2, 8), None, steps=0)


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(95, 100)
    assert lo == pytest.approx(0.8882, abs=1e-3) and hi == pytest.approx(0.9785, abs=1e-3)
    assert wilson_interval(100, 100)[1] == 1.0 and wilson_interval(0, 100)[0] == 0.0
    assert wilson_interval(0, 100)[1] == pytest.approx(0.0370, abs=1e-3)


# ----------------------------------------------------------------------------- padding


@pytest.mark.parametrize("mode,expected", [("pd_ee_delta_pos", "hold"), ("pd_ee_delta_pose", "hold"),
                                           ("pd_joint_delta_pos", "hold"), ("pd_joint_pos", "repeat"),
                                           ("pd_ee_pose", "repeat")])
def test_padding_fits_the_control_mode(mode, expected):
    assert end_padding_for(mode) == expected
    assert PolicyConfig(control_mode=mode).resolved_end_padding() == expected
    assert end_padding_for(mode, "repeat") == "repeat"  # an explicit choice wins


def test_delta_padding_stops_the_arm_and_keeps_the_gripper():
    eps = [episode(5, 0.0, A=4)]  # actions 0.5 .. 4.5 on all 4 dims; the last dim is the gripper
    hold = PolicyWindows(eps, n_obs_steps=1, n_hist=2, horizon=4, end_padding="hold", gripper_dims=1)
    s = hold[3]  # t = 3: actions 3, 4 real, then two past the end
    assert s["action_is_pad"].tolist() == [False, False, True, True]
    assert s["action"][:2, 0].tolist() == [3.5, 4.5]
    assert s["action"][2:, :3].abs().sum() == 0  # no arm motion past the end
    assert s["action"][2:, 3].tolist() == [4.5, 4.5]  # last gripper command held
    rep = PolicyWindows(eps, n_obs_steps=1, n_hist=2, horizon=4, end_padding="repeat")
    assert rep[3]["action"][2:].tolist() == [[4.5] * 4] * 2  # absolute targets: last target repeated
    # Real actions are never touched, and the stored arrays are not modified by padding.
    assert torch.equal(hold[0]["action"], rep[0]["action"])
    assert float(hold.action[-1, 0]) == 4.5


def test_unknown_end_padding_is_refused():
    with pytest.raises(ValueError, match="end_padding"):
        PolicyConfig(end_padding="zero")
    with pytest.raises(ValueError, match="end_padding"):
        PolicyWindows([episode(5)], 1, 2, 4, end_padding="auto")  # the head resolves auto first


# ----------------------------------------------------------------------------- auxiliary losses


class CallCounter(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net, self.calls, self.rows = net, 0, []

    def forward(self, x, t, cond=None):
        self.calls += 1
        self.rows.append(x.shape[0])
        return self.net(x, t, cond)


@pytest.mark.parametrize("name,own,through", [("a2a", 1, 3), ("flow", 1, 3), ("regression", 1, 1), ("mip", 2, 2)])
def test_consistency_goes_through_the_objectives_own_sampler(name, own, through):
    policy, w = tiny_policy(objective=ObjectiveConfig(name=name, rollout_weight=1.0, rollout_k=3,
                                                      rollout_batch_size=3))
    counter = CallCounter(policy.net)
    policy.net = counter
    policy.train()
    loss, info = policy(w.__getitems__(list(range(8))))
    # own loss on the whole batch, then the rollout (K Euler steps / the regression call(s)) on 3 rows
    assert counter.calls == own + through
    assert counter.rows == [8] * own + [3] * through
    assert "loss_rollout" in info and "loss_decoded_rollout" in info


def test_diffusion_refuses_rollout_terms():
    with pytest.raises(ValueError, match="no differentiable sampler"):
        ObjectiveConfig(name="ddpm", rollout_weight=1.0)
    with pytest.raises(ValueError, match="decoded_rollout_weight"):
        PolicyConfig(objective=ObjectiveConfig(name="ddpm"), decoded_rollout_weight=0.5)


def grads(policy, batch):
    policy.zero_grad(set_to_none=True)
    loss, _ = policy(batch)
    loss.backward()
    return {name: (p.grad is not None and p.grad.abs().sum().item() > 0)
            for name, p in policy.named_parameters()}


def any_grad(g, prefix):
    return any(v for k, v in g.items() if k.startswith(prefix))


def test_each_auxiliary_term_reaches_what_it_documents():
    base = dict(objective=ObjectiveConfig(name="flow", rollout_weight=0.0, rollout_k=2))
    batch = None
    # Nothing auxiliary: the latent Gaussian flow trains the encoder jointly, never the decoder.
    policy, w = tiny_policy(recon_weight=0.0, decoded_rollout_weight=0.0, **base)
    batch = w.__getitems__(list(range(8)))
    g = grads(policy.train(), batch)
    assert not any_grad(g, "chunk_decoder") and any_grad(g, "chunk_encoder") and any_grad(g, "net.")
    # Reconstruction: reaches the decoder (and the encoder), not the backbone by itself.
    policy, _ = tiny_policy(recon_weight=0.5, decoded_rollout_weight=0.0, **base)
    assert any_grad(grads(policy.train(), batch), "chunk_decoder")
    # Decoded rollout through the flow's own sampler: reaches the decoder.
    policy, _ = tiny_policy(recon_weight=0.0, decoded_rollout_weight=0.5, **base)
    assert any_grad(grads(policy.train(), batch), "chunk_decoder")
    # Stop-gradient on the target: the flow loss no longer moves the chunk encoder.
    policy, _ = tiny_policy(recon_weight=0.0, decoded_rollout_weight=0.0, target_stop_grad=True, **base)
    assert not any_grad(grads(policy.train(), batch), "chunk_encoder")
    # A2A: the source encoder learns from the flow loss; a Gaussian flow has no source encoder.
    policy, _ = tiny_policy(objective=ObjectiveConfig(name="a2a", rollout_weight=0.0))
    assert any_grad(grads(policy.train(), batch), "source_encoder")
    policy, _ = tiny_policy(**base)
    assert policy.source_encoder is None


def test_history_input_noise_and_start_point_noise_are_separate_knobs():
    policy, w = tiny_policy(history_input_noise=0.5)
    batch = w.__getitems__([0, 1])
    torch.manual_seed(0)
    a = policy._history(batch)
    torch.manual_seed(1)
    b = policy._history(batch)
    assert not torch.allclose(a, b)  # the history itself is perturbed
    obj = ObjectiveConfig(name="a2a", start_point_noise=0.2)
    assert obj.start_point_noise == 0.2 and not hasattr(obj, "source_sigma")


# ----------------------------------------------------------------------------- tables


def write_run(root, task, run, seed, once, at_end, cpu_s=600.0, steps=1, load=2.1, spec="1step", nonfinite=None,
              stages=None):
    d = root / task / run / f"seed{seed}"
    (d / "eval").mkdir(parents=True)
    (d / "run_info.json").write_text(json.dumps({
        "seed": seed, "overrides": [], "run_command": f"scripts/policy_run.py {task} {run} --seed {seed} --eval {steps}"}))
    (d / "train_summary.json").write_text(json.dumps({"iterations": 2500, "train_cpu_s": cpu_s, "train_time_s": cpu_s / 2,
                                                      "load_avg_mean": load, "torch_threads": 2}))
    (d / "metrics.jsonl").write_text("\n".join(json.dumps(m) for m in [
        {"step": 100, "loss": 1.0},
        {"step": 1250, "eval/success_once": once - 0.1, "eval/success_at_end": at_end},
        {"step": 2500, "eval/success_once": once, "eval/success_at_end": at_end}]) + "\n")
    n = 100
    (d / "eval" / f"test_{spec}.json").write_text(json.dumps({
        "env_id": "PushCube-v1", "episodes": n, "complete": True, "success_once": once, "success_at_end": at_end,
        "objective": run.split("+")[0].split("_")[0], "num_inference_steps": steps, "method": "euler",
        "model_calls_per_chunk": steps, "horizon": 100, "registered_max_episode_steps": 50, "seed_split": "test",
        "latency": {"p50_ms": 1.5 * steps},
        **({} if nonfinite is None else {"nonfinite_action_steps": nonfinite}),
        **({} if stages is None else {"stages_reached": stages[0], "stages_at_end": stages[1]})}))


def test_policy_table_rebuilds_readme_rows_from_result_files(tmp_path):
    from conftest import run_tool

    runs = tmp_path / "runs"
    write_run(runs, "pushcube", "a2a", 0, 0.96, 0.90)
    write_run(runs, "pushcube", "a2a", 1, 0.98, 0.94)
    write_run(runs, "pushcube", "a2a", 2, 1.00, 0.93)
    write_run(runs, "pushcube", "flow", 0, 0.91, 0.85, steps=10, spec="10step", nonfinite=7)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- policy-table:main -->\nold stale row 0.31\n<!-- /policy-table:main -->\noutro\n")
    r = run_tool("policy_table.py", "--runs", runs, "--readme", readme, "--out", tmp_path / "table")
    assert r.returncode == 0, r.stderr[-2000:]
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "stale" not in text
    rows = [ln for ln in text.splitlines() if ln.startswith("| PushCube")]
    assert len(rows) == 2
    a2a, flow = rows
    # mean over 3 seeds, the seed range, and the pooled Wilson interval of 294 / 300 episodes
    assert "| a2a |" in a2a and "0.98 [0.96-1.00]" in a2a and "| 3 |" in a2a
    lo, hi = wilson_interval(294, 300)
    assert f"{lo:.2f}-{hi:.2f}" in a2a
    assert "--seed {0,1,2}" in a2a and "(100; reg. 50)" in a2a
    assert "| flow |" in flow and "10 steps (10 calls)" in flow and "0.91" in flow
    assert "| 0.85 | 7 |" in flow and "[0.90-0.94] | - |" in a2a  # NaN action steps, "-" where not recorded
    table = json.loads((tmp_path / "table.json").read_text())
    assert {row["run"] for row in table["rows"]} == {"a2a", "flow"}
    # A result file that cannot be read is a one-line error naming it.
    (runs / "pushcube" / "flow" / "seed0" / "eval" / "test_10step.json").write_text("{")
    r = run_tool("policy_table.py", "--runs", runs, "--out", tmp_path / "table2")
    assert r.returncode != 0 and "test_10step.json" in r.stderr.strip().splitlines()[-1]


def test_peer_sources_get_their_own_table_beside_a2a(tmp_path):
    from a2a_temporal.commands.policy_table import aggregate, collect, render

    write_run(tmp_path, "pushcube", "a2a", 0, 0.96, 0.96)
    write_run(tmp_path, "pushcube", "a2a+legendre", 0, 0.80, 0.80)
    write_run(tmp_path, "pushcube", "a2a+recovery", 0, 0.90, 0.90)
    write_run(tmp_path, "stackcube", "a2a", 0, 0.60, 0.10)
    write_run(tmp_path, "stackcube", "a2a_k1_nocons", 0, 0.80, 0.20)  # a named recipe of A2A's variants
    recs = collect(tmp_path)
    rows = aggregate(recs)
    sources = [ln for ln in render("sources", recs, rows).splitlines() if ln.startswith("| P") or ln.startswith("| S")]
    assert [ln.split(" | ")[1] for ln in sources] == ["a2a", "a2a+legendre"]  # no StackCube: no source ran there
    ablation = [ln.split(" | ")[1] for ln in render("ablation", recs, rows).splitlines() if ln.startswith("| ")][1:]
    assert ablation == ["a2a", "a2a+recovery", "a2a", "a2a_k1_nocons"], ablation


def test_stage_table_pools_the_sub_goal_rates_over_seeds(tmp_path):
    from a2a_temporal.commands.policy_table import aggregate, collect, render

    write_run(tmp_path, "stackcube", "a2a", 0, 0.60, 0.10, stages=({"grasped": 0.9, "on_b": 0.7}, {"grasped": 0.1, "on_b": 0.3}))
    write_run(tmp_path, "stackcube", "a2a", 1, 0.70, 0.20, stages=({"grasped": 1.0, "on_b": 0.8}, {"grasped": 0.3, "on_b": 0.5}))
    write_run(tmp_path, "stackcube", "flow", 0, 0.80, 0.20)  # evaluated before sub-goals were recorded
    rows = aggregate(collect(tmp_path))
    lines = [ln for ln in render("stages", [], rows).splitlines() if ln.startswith("| ")]
    assert lines[0].startswith("| task (horizon) | recipe | sampler | seeds | grasped (ever / at end) | on_b (ever / at end)")
    assert len(lines) == 2 and "| a2a |" in lines[1] and "| 2 |" in lines[1]
    assert "| 0.95 / 0.20 | 0.75 / 0.40 | 0.65 | 0.15 |" in lines[1]  # pooled over the two seeds' episodes
    assert "No evaluation" in render("stages", [], [r for r in rows if r["run"] == "flow"])


def test_replan_table_shows_validation_choice_beside_test_rows(tmp_path):
    from a2a_temporal.commands.policy_table import aggregate, collect, render

    write_run(tmp_path, "stackcube", "a2a", 0, 0.70, 0.20)
    d = tmp_path / "stackcube" / "a2a" / "seed0"
    info = json.loads((d / "run_info.json").read_text())
    info["eval_commands"] = {}
    for name, once, n_exec in [("val_1step-exec4", 0.80, 4), ("val_1step", 0.72, 8), ("test_1step-exec4", 0.85, 4)]:
        res = json.loads((d / "eval" / "test_1step.json").read_text())
        res.update(success_once=once, n_action_steps=n_exec, policy_config={"n_action_steps": 8},
                   seed_split="validation" if name.startswith("val") else "test")
        (d / "eval" / f"{name}.json").write_text(json.dumps(res))
        info["eval_commands"][f"{name}.json"] = f"scripts/policy_run.py stackcube a2a --seed 0 --eval {name}"
    (d / "run_info.json").write_text(json.dumps(info))
    write_run(tmp_path, "stackcube", "flow", 0, 0.75, 0.20, steps=10, spec="10step")  # not re-planned: no rows
    recs = collect(tmp_path)
    rows = aggregate(recs)
    assert {r["spec"] for r in rows} == {"1step", "1step-exec4", "10step"}  # validation files stay out of test rows
    lines = [ln for ln in render("replan", recs, rows).splitlines() if ln.startswith("| PushCube")]
    assert [ln.split(" | ")[3] for ln in lines] == ["validation", "validation", "test", "test"]
    assert "1 step (1 call) | validation | 1 | 0.72" in lines[0]
    assert "re-plans every 4 actions | validation | 1 | 0.80" in lines[1] and "--eval val_1step-exec4`" in lines[1]
    assert "--eval 1`" in lines[2]  # a file without its own command keeps the run's first command
    assert "re-plans every 4 actions | test | 1 | 0.85" in lines[3] and "--eval test_1step-exec4`" in lines[3]
    assert "No evaluation" in render("replan", [r for r in recs if r["run"] == "flow"],
                                     [r for r in rows if r["run"] == "flow"])


def test_checkpoints_with_renamed_config_keys_still_load(tmp_path):
    from a2a_temporal.pretrained import load_pretrained

    policy, _ = tiny_policy(history_input_noise=0.05)
    policy.save_pretrained(tmp_path / "p")
    meta = json.loads((tmp_path / "p" / "config.json").read_text())
    c = meta["config"]
    c["history_noise"] = c.pop("history_input_noise")  # the names of an earlier release
    c["objective"]["rollout_steps"] = c["objective"].pop("rollout_k")
    c["objective"]["source_sigma"] = c["objective"].pop("start_point_noise")
    c["objective"]["steps"] = c["objective"].pop("num_inference_steps")
    (tmp_path / "p" / "config.json").write_text(json.dumps(meta))
    loaded = load_pretrained(tmp_path / "p")
    assert loaded.config.history_input_noise == 0.05 and loaded.config.objective.rollout_k == c["objective"]["rollout_steps"]


@pytest.mark.parametrize("spec,msg", [("a2a", "expected NAME=PATH:STEPS"), ("=x:1", "non-empty"),
                                      ("a=runs/x", "missing ':STEPS'"), ("a=runs/x:ten", "positive integer"),
                                      ("a=runs/x:0", "positive integer")])
def test_malformed_model_specs_are_one_line_errors(spec, msg):
    from a2a_temporal.cli import parse_named_spec

    with pytest.raises(ConfigError, match=msg):
        parse_named_spec(spec, "--model")
    assert parse_named_spec("a=runs/x:y:10", "--model") == ("a", "runs/x:y", 10)


# ----------------------------------------------------------------------------- sources

SOURCE_CASES = [("history_mlp", "latent"), ("legendre", "latent"), ("legendre", "action"),
                ("last_action_gaussian", "action"), ("adaptive_mix", "latent"), ("adaptive_mix", "action")]


def source_policy(source, space):
    # tiny_policy: n_hist = horizon = 4, as the previous-action sources in action space need
    return tiny_policy(source=source, flow_space=space, objective=ObjectiveConfig(name="a2a", rollout_weight=0.0))


@pytest.mark.parametrize("source,space", SOURCE_CASES)
def test_each_source_has_the_target_shape_reloads_and_reads_the_history(source, space, tmp_path):
    policy, w = source_policy(source, space)
    batch = w.__getitems__([3, 5, 7])
    hist = policy._history(batch)
    c = policy.config
    like = torch.zeros(3, *((c.latent_tokens, c.latent_dim) if space == "latent" else (c.horizon, c.action_dim)))
    torch.manual_seed(0)
    x0 = policy._source(hist, like)
    assert x0.shape == like.shape and torch.isfinite(x0).all()
    # It reads the history: another history gives another source (same noise draws).
    torch.manual_seed(0)
    other = policy._source(hist + 0.5, like)
    assert not torch.allclose(x0, other)
    # Save / reload: identical chunks for identical seeds.
    policy.save_pretrained(tmp_path / "p")
    from a2a_temporal.pretrained import load_pretrained

    loaded = load_pretrained(tmp_path / "p")
    assert loaded.config.source == source
    torch.manual_seed(1)
    a = policy.predict_action_chunk(batch)
    torch.manual_seed(1)
    b = loaded.predict_action_chunk(batch)
    assert torch.allclose(a, b, atol=1e-6)
    policy.train()
    loss, _ = policy(w.__getitems__(list(range(8))))
    loss.backward()
    assert torch.isfinite(loss)


def test_source_specifics():
    from a2a_temporal.heads.action.sources import legendre_basis

    basis = legendre_basis(8, 3)
    # Orthogonal-ish columns with P0 = 1 and P1 = x; the fit of a cubic is exact.
    x = torch.linspace(-1, 1, 8, dtype=torch.float64)
    assert torch.allclose(basis[:, 0], torch.ones(8, dtype=torch.float64)) and torch.allclose(basis[:, 1], x)
    cubic = 2 * x ** 3 - x + 0.5
    coef = torch.linalg.pinv(basis) @ cubic
    assert torch.allclose(basis @ coef, cubic, atol=1e-10)
    # The narrow Gaussian sits on the last executed action; padded (absent) actions give zeros.
    policy, w = source_policy("last_action_gaussian", "action")
    policy.config.source_noise = 0.0
    policy.source_module.sigma = 0.0
    batch = w.__getitems__([4])
    hist = policy._history(batch)
    x0 = policy._source(hist, torch.zeros(1, 4, 2))
    assert torch.allclose(x0, hist[:, -1:, -2:].expand(1, 4, 2))
    # The MARS-like mix starts mostly on the history embedding (w near 0.1).
    policy, w = source_policy("adaptive_mix", "latent")
    wts = policy.source_module.weights(policy._history(w.__getitems__([0, 1])))
    assert torch.allclose(wts, torch.full_like(wts, 0.1), atol=0.02)
    with pytest.raises(ValueError, match="flow_space=action"):
        PolicyConfig(source="last_action_gaussian", flow_space="latent")
    with pytest.raises(ValueError, match="objective.name=a2a"):
        PolicyConfig(source="legendre", objective=ObjectiveConfig(name="flow"))


@pytest.mark.slow
def test_nonfinite_actions_are_counted_not_fatal():
    policy, _ = tiny_policy()
    policy.config.state_dim = 35  # PushCube-v1 state, pd_ee_delta_pos

    class NaNPolicy:  # what a diverged sampler would return
        config, objective = policy.config, policy.objective

        def parameters(self):
            return policy.parameters()

        def eval(self):
            return self

        def predict_action_chunk(self, batch, steps=None, method=None):
            return torch.full((batch["state"].shape[0], policy.config.horizon, 4), float("nan"))

    policy.config.action_dim, policy.config.qpos_dim = 4, 9
    res = evaluate(NaNPolicy(), episodes=1, num_envs=1, max_episode_steps=6, progress=False)
    assert res["nonfinite_action_steps"] == 6 and res["per_episode"][0]["nonfinite_action_steps"] == 6


@pytest.mark.slow
def test_actions_per_policy_call_can_be_set_at_evaluation():
    """``n_action_steps`` at evaluation: the real PushCube episode asks the policy for a chunk every
    n control steps; the result records n."""
    policy, _ = tiny_policy()
    policy.config.state_dim, policy.config.action_dim, policy.config.qpos_dim = 35, 4, 9

    class CountingPolicy:
        config, objective = policy.config, policy.objective
        calls = 0

        def parameters(self):
            return policy.parameters()

        def eval(self):
            return self

        def predict_action_chunk(self, batch, steps=None, method=None):
            CountingPolicy.calls += 1
            return torch.zeros(batch["state"].shape[0], policy.config.horizon, 4)

    assert policy.config.n_action_steps == 3 and policy.config.horizon == 4
    for n_exec, calls in [(None, 2), (2, 3), (1, 6), (4, 2)]:
        CountingPolicy.calls = 0
        res = evaluate(CountingPolicy(), episodes=1, num_envs=1, max_episode_steps=6, progress=False,
                       n_action_steps=n_exec)
        assert CountingPolicy.calls == calls == res["policy_calls"]
        assert res["n_action_steps"] == (n_exec or policy.config.n_action_steps)
        assert res["temporal_ensemble"] is None
    for n_exec, calls in [(1, 6), (2, 3)]:  # temporal ensembling plans every n steps, whatever the queue holds
        CountingPolicy.calls = 0
        res = evaluate(CountingPolicy(), episodes=1, num_envs=1, max_episode_steps=6, progress=False,
                       n_action_steps=n_exec, temporal_ensemble=0.01)
        assert CountingPolicy.calls == calls == res["policy_calls"] and res["temporal_ensemble"] == 0.01
    with pytest.raises(ConfigError, match=r"temporal_ensemble=nan: expected a finite number"):
        evaluate(CountingPolicy(), episodes=1, temporal_ensemble=float("nan"), progress=False)
    for bad in (0, policy.config.horizon + 1):
        with pytest.raises(ConfigError, match=rf"n_action_steps={bad} must lie in \[1, the policy's chunk horizon"):
            evaluate(CountingPolicy(), episodes=1, n_action_steps=bad, progress=False)


def test_temporal_ensembling_executes_the_weighted_mean_of_live_chunks():
    """ACT's rule: every chunk stays live over its horizon; the action is the exp(-m i)-weighted
    mean of the live chunks' actions for this step, i = 0 the oldest."""
    from a2a_temporal.data.history import ChunkActor

    frame = {"state": np.zeros(3, np.float32), "qpos": np.zeros(9, np.float32)}
    H = 4
    for m, n_exec in [(0.0, 1), (0.5, 1), (-1.0, 2)]:
        actor, planned, done = ChunkActor(2, 8, n_exec, 2, temporal_ensemble=m), [], []
        for t in range(9):
            actor.observe(frame)
            assert actor.needs_plan() == (t % n_exec == 0)
            if actor.needs_plan():
                chunk = np.stack([np.full(2, 10.0 * t + k) for k in range(H)])  # action of step t + k
                actor.plan(chunk)
                planned.append((t, chunk))
            done.append(actor.act())
            live = [c[t - t0] for t0, c in planned if 0 <= t - t0 < H]
            w = np.exp(-m * np.arange(len(live)))
            np.testing.assert_allclose(done[-1], (w[:, None] * np.stack(live)).sum(0) / w.sum(), rtol=1e-6)
        assert len(actor.live) <= -(-H // n_exec)  # expired chunks are dropped
        np.testing.assert_allclose(actor.batch()["prev_action"][0, -1].numpy(), done[-1])  # history = executed
    # each action planned for step t is 10 t0 + (t - t0) = 9 t0 + t: the plain mean of ACT at t = 5
    # over chunks planned at 2..5 is 9 * 3.5 + 5
    actor = ChunkActor(2, 8, 1, 2, temporal_ensemble=0.0)
    for t in range(6):
        actor.observe(frame)
        actor.plan(np.stack([np.full(2, 10.0 * t + k) for k in range(H)]))
        a = actor.act()
    np.testing.assert_allclose(a, 9 * 3.5 + 5)
    with pytest.raises(ValueError, match="temporal_ensemble=inf"):
        ChunkActor(2, 8, 1, 2, temporal_ensemble=float("inf"))
    with pytest.raises(ValueError, match="policy.temporal_ensemble=nan"):
        PolicyConfig(temporal_ensemble=float("nan"))


def test_the_table_names_a_re_planning_interval_that_differs_from_training():
    from a2a_temporal.commands.policy_table import sampler_text

    row = {"steps": 1, "calls": 1, "method": "euler", "objective": "a2a", "train_n_action_steps": 8}
    assert sampler_text({**row, "n_action_steps": 8}) == "1 step (1 call)"
    assert sampler_text({**row, "n_action_steps": 4}) == "1 step (1 call), re-plans every 4 actions"
    assert (sampler_text({**row, "n_action_steps": 1, "temporal_ensemble": 0.01})
            == "1 step (1 call), re-plans every 1 action, temporal ensembling (m = 0.01)")
    assert sampler_text({**row, "n_action_steps": None}) == "1 step (1 call)"  # older result files


def test_policy_run_eval_specs_name_their_files_and_bad_ones_fail_before_training():
    """scripts/policy_run.py --eval [METHOD:]STEPS[/N][~M]: each part reaches its own file tag; a
    malformed spec is a one-line usage error before any demo generation or training starts."""
    import importlib.util
    import subprocess
    import sys

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("policy_run", ROOT / "scripts" / "policy_run.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.parse_spec("") == ("", "", "", "", "default")
    assert mod.parse_spec("1/12") == ("", "1", "12", "", "1step-exec12")
    assert mod.parse_spec("ddim:10/4~0.1") == ("ddim", "10", "4", "0.1", "ddim-10step-exec4-ens0.1")
    assert mod.parse_spec("1/1~0")[4] == "1step-exec1-ens0"
    for bad, part in (("0", "STEPS"), ("1/0", "/N"), ("1/x", "/N"), ("1/1~nan", "~M")):
        with pytest.raises(ValueError, match=part):
            mod.parse_spec(bad)
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "policy_run.py"), "stackcube", "a2a", "--runs",
                        "/nonexistent/runs", "--eval", "1/1~inf"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "--eval '1/1~inf': ~M = 'inf' is not a finite number" in r.stderr
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "policy_run.py"), "stackcube", "a2a", "--runs",
                        "/nonexistent/runs", "--demos", "0"], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2 and "--demos 0: expected a positive number of demos" in r.stderr
    assert not Path("/nonexistent/runs").exists()


@pytest.mark.slow
def test_observation_size_mismatch_names_both_sizes():
    policy, _ = tiny_policy()  # trained on 3-dim states; PushCube-v1 gives 35
    with pytest.raises(ConfigError, match=r"gives 35-dim state observations but the policy was trained on 3-dim"):
        evaluate(policy, episodes=1, num_envs=1, max_episode_steps=2, progress=False)


def test_result_tables_are_rebuilt_from_their_files(tmp_path):
    from conftest import run_tool

    (tmp_path / "toy_bimodal").mkdir()
    (tmp_path / "toy_bimodal" / "toy_results.json").write_text(json.dumps({
        "mode_fractions": {"a2a@1": {"mode_a": 0.0, "mode_b": 0.0, "between": 1.0, "other": 0.0},
                           "flow@10": {"mode_a": 0.47, "mode_b": 0.48, "between": 0.05, "other": 0.0}},
        "error_to_nearest_mode": {"a2a": {"1": 0.41}, "flow": {"10": 0.036}}}))
    write_run(tmp_path / "runs", "pushcube", "a2a", 0, 0.9, 0.9)
    readme = tmp_path / "README.md"
    envs = tmp_path / "benchmark" / "eval_envs"
    envs.mkdir(parents=True)
    for n, wall, calls in ((2, 20.0, 200), (8, 28.0, 50)):  # a glob marker: one file per configuration
        (envs / f"push_{n}envs.json").write_text(json.dumps({
            "num_envs": n, "episodes": 32, "policy_calls": calls, "wall_time_s": wall,
            "latency": {"p50_ms": 5.0, "batch_size_max": n}, "command": ["not", "a", "string"]}))
    for folder, gain in (("life", 1.5), ("robot", 0.2)):  # files of the same name in different folders
        d = tmp_path / "video_pipeline" / folder
        d.mkdir(parents=True)
        (d / "pipeline.json").write_text(json.dumps({
            "videos": f"data/{folder}", "probe": {"videos": 20, "size": 32, "frame_stride": 1},
            "held_out_videos": 2, "vae_reconstruction_psnr": 30.0, "copy_last_psnr": 20.0,
            "next_frame_psnr": 20.0 + gain, "gain_db": gain, "verdict": "learned" if gain >= 0.5 else "no better",
            "baselines": {"flow": {"steps": 10, "gain_db": -1.0}}, "command": f"python tools/video_pipeline.py {folder}",
            **({"test_videos": "data/robot_new", "held_out_videos": 30, "heldout_split": {"videos": 2}}
               if folder == "robot" else {})}))
    bench = tmp_path / "video_bench"
    bench.mkdir()
    for split, pred in (("val", 21.0), ("train", 25.0)):  # one model scored on held-out and on training files
        (bench / f"life_{split}.json").write_text(json.dumps({
            "videos": "data/life", "split": split, "scored_videos": 18 if split == "train" else 2,
            "copy_last_next_frame_psnr": 20.0, "command": f"python tools/benchmark_video.py --split {split}",
            "copy_last_rollout_psnr": [20.0, 18.0, 17.0],
            "models": {"a2a": {"steps": 1, "next_frame_psnr": pred, "true_latent_psnr": 38.0,
                               **({"video_gain_db": 1.1, "gain_ci95": [-0.5, 2.5],
                                   "rollout_psnr": [22.0, 17.0, 18.0]} if split == "val" else {})}}}))
    # a second domain's benchmark files fill their own table, not the game of life's
    (bench / "shapes_new.json").write_text(json.dumps({
        "videos": "data/shapes_new", "split": "val", "scored_videos": 50, "copy_last_next_frame_psnr": 21.0,
        "command": "python tools/benchmark_video.py shapes",
        "models": {"a2a_250": {"steps": 1, "next_frame_psnr": 24.0, "true_latent_psnr": 30.0}}}))
    (tmp_path / "robustness").mkdir()
    (tmp_path / "robustness" / "pushcube_displace_horizon150.json").write_text(json.dumps({
        "suite": "displace", "levels": [0, 4], "max_episode_steps": 150, "command": "python tools/benchmark.py x",
        "results": {"a2a": [{"success_once": 0.9, "success_once_ci95": [0.8, 0.95]},
                            {"success_once": 0.5, "success_once_ci95": [0.4, 0.6], "by_direction": {
                                "toward_goal": {"episodes": 3, "success_once": 2},
                                "sideways": {"episodes": 5, "success_once": 1},
                                "away_from_goal": {"episodes": 2, "success_once": 0}}}]}}))
    (tmp_path / "robustness" / "pushcube_displace_horizon150_replan.json").write_text(json.dumps({
        "suite": "displace", "levels": [4], "max_episode_steps": 150, "command": "python tools/benchmark.py y",
        "seed": 500000,
        "n_action_steps": {"a2a_x2": 2},
        "results": {"a2a_x2": [{"success_once": 0.7, "success_once_ci95": [0.6, 0.8]}],
                    "a2a": [{"success_once": 0.8, "success_once_ci95": [0.7, 0.9]}]}}))
    readme.write_text("a\n<!-- table:toy-bimodal -->\nold\n<!-- /table:toy-bimodal -->\n"
                      "<!-- table:robustness-displace-horizon -->\n<!-- /table:robustness-displace-horizon -->\n"
                      "<!-- table:video-bench -->\n<!-- /table:video-bench -->\n"
                      "<!-- table:video-bench-shapes -->\n<!-- /table:video-bench-shapes -->\n"
                      "<!-- table:latency -->\nkept: no result file\n<!-- /table:latency -->\n"
                      "<!-- table:video-pipeline -->\n<!-- /table:video-pipeline -->\n"
                      "<!-- table:eval-envs -->\n<!-- /table:eval-envs -->\nb\n")
    r = run_tool("policy_table.py", "--runs", tmp_path / "runs", "--readme", readme, "--results", tmp_path,
                 "--out", tmp_path / "t")
    assert r.returncode == 0, r.stderr[-2000:]
    text = readme.read_text()
    assert "| a2a, 1 step | 0.00 | 0.00 | 1.00 | 0.00 | 0.410 |" in text
    assert "| flow, 10 steps | 0.47 | 0.48 | 0.05 | 0.00 | 0.036 |" in text
    assert "old" not in text and "kept: no result file" in text and text.endswith("b\n")
    # a robustness sweep run longer than the task's horizon says so in its header
    assert ("| policy (horizon 150) | displace 0 | displace 4 |\n|---|---|---|\n"
            "| a2a | 0.90 (0.80-0.95) | 0.50 (0.40-0.60) |\n\n"
            "| policy, level | pushed toward the goal | sideways | away from the goal |\n|---|---|---|---|\n"
            "| a2a, displace 4 | 2/3 | 1/5 | 0/2 |\n\n`python tools/benchmark.py x`") in text
    # a checkpoint given as NAME=CKPT:STEPS/N says how many actions it executes per call
    assert ("| policy (validation seeds 500000+, horizon 150) | displace 4 |\n|---|---|\n"
            "| a2a_x2 (2 actions per call) | 0.70 (0.60-0.80) |\n| a2a | 0.80 (0.70-0.90) |\n\n"
            "`python tools/benchmark.py y`") in text
    assert "| 2 | 32 | 200 | 20.0 | 0.62 | 5.00 (2) |\n| 8 | 32 | 50 | 28.0 | 0.88 | 5.00 (8) |" in text
    assert "| 21.50 dB (+1.50) | flow 10 steps: -1.00 dB | learned | `python tools/video_pipeline.py life` |" in text
    assert "| 20.20 dB (+0.20) | flow 10 steps: -1.00 dB | no better |" in text
    # a run scored on a folder of new videos names it and its size beside the held-out split
    assert "| data/life (20 files, 2 held out) |" in text
    assert "| data/robot (20 files, 2 held out; scored on all 30 files of data/robot_new) |" in text
    assert "`life_train`: data/life, 18 training files" in text and "`life_val`: data/life, 2 held-out files" in text
    life_block = text.split("<!-- table:video-bench -->")[1].split("<!-- /table:video-bench -->")[0]
    shapes_block = text.split("<!-- table:video-bench-shapes -->")[1].split("<!-- /table:video-bench-shapes -->")[0]
    assert "a2a_250" not in life_block and "`life_val`" not in shapes_block
    assert "| a2a_250 | 1 | 24.00 dB | 21.00 dB | +3.00 dB |" in shapes_block
    assert "| a2a | 1 | 25.00 dB | 20.00 dB | +5.00 dB | - | 38.00 dB |" in text  # a file without intervals
    # the rollout column: the worst horizon (here the 2nd, below copy-last) and the last one
    assert "| a2a | 1 | 21.00 dB | 20.00 dB | +1.00 dB | +1.10 dB [-0.50, +2.50] | 38.00 dB | -1.00 dB (h2) / +1.00 dB (h3) |" in text


def test_robustness_ranking_pools_perturbed_episodes_and_ranks_on_them():
    """Sweeps of the same checkpoints under several suites -> one ranked row per policy: the nominal
    levels pooled into 'unperturbed', every other level a column, the policies ordered by the pooled
    success over all perturbed episodes; a later file of a suite adds checkpoints, NAME_seedK joins
    NAME as another training seed; files that do not fit are refused, not guessed."""
    from a2a_temporal.commands.policy_table import _robustness_ranking
    from a2a_temporal.errors import DataError

    def rows(*rates):
        return [{"success_once": r, "episodes": 10} for r in rates]

    files = {"robustness/pushcube_sources_suite_displace": {
                 "suite": "displace", "levels": [0, 4], "nominal_level": 0,
                 "results": {"a": rows(1.0, 0.2), "b": rows(0.8, 0.6)}},
             "robustness/pushcube_sources_suite_spawn": {
                 "suite": "spawn", "levels": [1.0, 2.0], "nominal_level": 1.0,
                 "results": {"a": rows(0.9, 0.4), "b": rows(0.8, 0.4)}}}
    table = _robustness_ranking(files).splitlines()
    assert table[0] == ("| rank | policy | seeds | unperturbed | displace 4 | spawn 2 | all perturbed episodes "
                        "| kept (perturbed / unperturbed) |")
    lo, hi = wilson_interval(10, 20)  # b: 6 + 4 of 20 perturbed episodes, ahead of a's 2 + 4
    assert table[2].startswith("| 1 | b | 1 | 0.80 (") and table[2].endswith(f"| 0.50 ({lo:.2f}-{hi:.2f}) | 0.62 |")
    lo, hi = wilson_interval(19, 20)  # a's two nominal levels pooled: 10 + 9 of 20
    assert table[3].startswith(f"| 2 | a | 1 | 0.95 ({lo:.2f}-{hi:.2f}) | 0.20 (") and "| 0.30 (" in table[3]
    assert table[3].endswith("| 0.32 |")  # keeps 0.30 / 0.95 of its success
    # a second sweep per suite adds a's second training seed: the row becomes the mean over seeds
    # with the [lowest-highest] seed, and a overtakes b
    files["robustness/pushcube_sources_suite_displace_seeds"] = {
        "suite": "displace", "levels": [0, 4], "nominal_level": 0, "results": {"a_seed1": rows(1.0, 1.0)}}
    files["robustness/pushcube_sources_suite_spawn_seeds"] = {
        "suite": "spawn", "levels": [1, 2], "nominal_level": 1, "results": {"a_seed1": rows(1.0, 0.8)}}
    table = _robustness_ranking(files).splitlines()
    assert table[2] == ("| 1 | a | 2 | 0.97 [0.95-1.00] | 0.60 [0.20-1.00] | 0.60 [0.40-0.80] "
                        "| 0.60 [0.30-0.90] | 0.61 [0.32-0.90] |"), table[2]
    assert table[3].startswith("| 2 | b | 1 |")
    files["robustness/pushcube_sources_suite_spawn_seeds"]["levels"] = [1, 1.5]
    with pytest.raises(DataError, match="pushcube_sources_suite_spawn_seeds.json: spawn levels"):
        _robustness_ranking(files)
    del files["robustness/pushcube_sources_suite_spawn_seeds"]
    with pytest.raises(DataError, match=r"suite spawn lacks policies \['a_seed1'\]"):
        _robustness_ranking(files)
    del files["robustness/pushcube_sources_suite_spawn"]["nominal_level"]
    with pytest.raises(DataError, match="no 'nominal_level'"):
        _robustness_ranking(files)



def test_displace_outcomes_table_pools_seeds_and_ranks_on_recoveries():
    """The recoveries table joins NAME_seedK to NAME per displace level, sums the episodes pushed
    before their first success and those that still succeed, ranks on that rate, and refuses a
    checkpoint counted in two outcome files."""
    from a2a_temporal.commands.policy_table import _displace_outcomes
    from a2a_temporal.errors import DataError

    def row(k, n, ko, no):
        return {"level": 4, "episodes": n + no, "pushed_before_success": {"success_once": k, "episodes": n},
                "not_pushed_before_success": {"success_once": ko, "episodes": no}}

    files = {"diag/stackcube_displace_outcomes": {"command": "python a", "files": {
                 "runs/r_c/a_displace4.json": row(0, 30, 70, 70), "runs/r_c/a_seed1_displace4.json": row(3, 40, 59, 60)}},
             "diag/stackcube_more_displace_outcomes": {"command": "python b", "files": {
                 "runs/r_g/b_displace4.json": row(7, 30, 70, 70)}}}
    table = _displace_outcomes(files).splitlines()
    lo, hi = wilson_interval(7, 30)
    assert table[2] == f"| b | 4 | 1 | 7 / 30 (7/30) | 0.23 ({lo:.2f}-{hi:.2f}) | 70 / 70 |"
    lo, hi = wilson_interval(3, 70)
    assert table[3] == f"| a | 4 | 2 | 3 / 70 (0/30, 3/40) | 0.04 ({lo:.2f}-{hi:.2f}) | 129 / 130 |"
    assert "`python a`" in table and "`python b`" in table
    files["diag/stackcube_more_displace_outcomes"]["files"]["runs/r_h/a_seed1_displace4.json"] = row(1, 2, 3, 4)
    with pytest.raises(DataError, match="checkpoint a_seed1 at level 4 is counted in another file"):
        _displace_outcomes(files)
    files["diag/stackcube_more_displace_outcomes"]["files"] = {"runs/r_h/a_seed1.json": row(1, 2, 3, 4)}
    with pytest.raises(DataError, match="is not named CHECKPOINT_displaceLEVEL.json"):
        _displace_outcomes(files)


def test_step_agreement_measures_the_change_with_sampler_steps():
    """scripts/step_agreement.py: the first step count agrees with itself exactly, more Euler steps
    move a2a's chunk, each error is the mean |chunk - demo chunk| over the valid actions only, and
    the table lists every checkpoint and step count."""
    import importlib.util

    from conftest import ROOT

    from a2a_temporal.commands.policy_table import _step_agreement

    spec = importlib.util.spec_from_file_location("step_agreement", ROOT / "scripts" / "step_agreement.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    policy, w = tiny_policy()
    batch = w.__getitems__(np.arange(len(w)))
    assert batch["action_is_pad"].any()  # windows past an episode's end: left out of the means
    out = mod.chunk_agreement(policy, batch, [1, 4])
    assert out[1]["vs_first"] == 0.0 and out[4]["vs_first"] > 0
    valid = ~batch["action_is_pad"]
    one = policy.predict_action_chunk(batch, num_inference_steps=1)
    assert out[1]["error"] == pytest.approx(float((one - batch["action"]).abs()[valid].mean()), rel=1e-5)
    table = _step_agreement({"steps": [1, 4], "results": {"ck": {"windows": len(w), "steps": {
        str(k): v for k, v in out.items()}}}}).splitlines()
    assert len(table) == 4 and table[3].startswith(f"| ck | 4 | {len(w)} | {out[4]['vs_first']:.4f} |")

def test_collected_results_rebuild_the_same_tables(tmp_path):
    """scripts/collect_results.py keeps the result files and leaves checkpoints and graphs behind;
    the tables built from the copies equal those built from the runs."""
    import subprocess
    import sys

    from conftest import ROOT, run_tool

    runs = tmp_path / "runs"
    write_run(runs / "policy", "pushcube", "a2a", 0, 0.96, 0.90)
    write_run(runs / "policy", "pushcube", "a2a+repeat_pad", 0, 0.97, 0.60)
    ckpt = runs / "policy" / "pushcube" / "a2a" / "seed0" / "checkpoints" / "0000100"
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(b"x" * 10)
    (runs / "deploy").mkdir()
    (runs / "deploy" / "p.onnx").write_bytes(b"x")
    (runs / "deploy" / "p.json").write_text("{}")
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "collect_results.py"), "--runs", str(runs),
                        "--out", str(tmp_path / "results")], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    kept = sorted(str(p.relative_to(tmp_path / "results")) for p in (tmp_path / "results").rglob("*") if p.is_file())
    assert "deploy/p.json" in kept and not any(k.endswith((".onnx", ".safetensors")) for k in kept)
    assert "policy/pushcube/a2a/seed0/eval/test_1step.json" in kept
    tables = []
    for root in (runs, tmp_path / "results"):
        readme = root / "README.md"
        readme.write_text("<!-- policy-table:padding -->\n<!-- /policy-table:padding -->\n")
        r = run_tool("policy_table.py", "--runs", root / "policy", "--readme", readme, "--out", root / "t")
        assert r.returncode == 0, r.stderr[-2000:]
        tables.append(readme.read_text())
    assert tables[0] == tables[1] and "| a2a+repeat_pad |" in tables[0] and "| a2a |" in tables[0]


def test_stackcube_placement_finds_the_first_lifted_release():
    import importlib.util

    spec = importlib.util.spec_from_file_location("placement", ROOT / "scripts" / "stackcube_placement.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    step = lambda g, z, grasped, xy=0.01: {"gripper": g, "z_a": z, "grasped": grasped, "xy_offset": xy}  # noqa: E731
    # opening on the table before any grasp, then a grasp, a lift and an opening over cube B at 3 cm
    trace = [step(1.0, 0.02, False), step(-1.0, 0.02, False), step(1.0, 0.02, False), step(-1.0, 0.02, True),
             step(-1.0, 0.06, True), step(0.9, 0.06, False, 0.03), step(1.0, 0.02, False)]
    assert mod.first_release(trace) == {"step": 6, **trace[5]}
    assert mod.first_release(trace[:5]) is None  # never opened while lifted
    s = mod.summarise([{"success_once": True, "release": {"xy_offset": 0.01, "z_a": 0.06}},
                       {"success_once": False, "release": {"xy_offset": 0.03, "z_a": 0.06}},
                       {"success_once": False, "release": None}])
    assert s["success"]["xy_offset_median_m"] == 0.01 and s["failure"]["released_lifted"] == 1
    assert s["failure"]["episodes"] == 2


def test_placement_and_time_to_target_tables():
    from a2a_temporal.commands.policy_table import _placement, _time_to_target

    g = lambda n, rel, med, lo, hi: {"episodes": n, "released_lifted": rel, "xy_offset_median_m": med,  # noqa: E731
                                     "xy_offset_min_m": lo, "xy_offset_max_m": hi, "height_median_m": 0.06}
    text = _placement({"diag/p": {"checkpoint": "ck", "steps": 1, "n_action_steps": 8, "command": "python x",
                                  "summary": {"success": g(80, 80, 0.01, 0.001, 0.025),
                                              "failure": g(20, 19, 0.03, 0.019, 0.056)}}})
    assert "| `ck` | 1, 8 | 80 / 20 (19) | 1.0 cm (0.1-2.5) | 3.0 cm (1.9-5.6) | 6.0 cm / 6.0 cm |" in text
    pt = lambda step, v, cpu: {"step": step, "value": v, "train_time_s": cpu / 2, "train_cpu_s": cpu}  # noqa: E731
    curve = {"metric": "eval/val_psnr", "baseline": None, "target": 27.0, "command": "python c",
             "summary": {"fast": {"reaches_target": pt(300, 27.2, 600), "last": pt(700, 28.5, 1400)},
                         "slow": {"reaches_target": None, "last": pt(700, 26.0, 3000)}}}
    text = _time_to_target({"curves/vae_x": curve})
    assert "| fast | 300 | 5.0 min | 10.0 min | 700, 28.50, 23.3 min |" in text
    assert "| slow | not reached | - | - | 700, 26.00, 50.0 min |" in text
    with pytest.raises(Exception, match="--target"):
        _time_to_target({"curves/vae_x": {**curve, "target": None}})


def test_vae_speed_table():
    from a2a_temporal.commands.policy_table import _vae_speed

    row = lambda s, p: {"s_per_it": s, "cpu_s_per_it": 2 * s, "parameters": p, "speedup": 1.2 / s}  # noqa: E731
    text = _vae_speed({"rows": {"default": row(1.2, 921031), "bf16": row(0.8, 921031)}, "threads": 2, "batch": 32,
                       "size": 64, "iters": 4, "rounds": 3, "command": "python scripts/vae_speed.py"})
    assert "| default | 0.92M | 1.200 | 2.400 | 1.00x |" in text and "| bf16 | 0.92M | 0.800 | 1.600 | 1.50x |" in text
    assert "2 thread(s), batch 32, 64 px" in text


def test_gpu_trained_rows_name_their_device_and_post_hoc_selection_prefers_later_ties(tmp_path):
    import importlib.util

    from a2a_temporal.commands.policy_table import aggregate, collect, render

    write_run(tmp_path, "peginsertion", "a2a", 0, 0.07, 0.07, cpu_s=2100)
    write_run(tmp_path, "peginsertion", "a2a+k1_nocons_long", 0, 0.50, 0.40, cpu_s=300)
    info = tmp_path / "peginsertion" / "a2a+k1_nocons_long" / "seed0" / "run_info.json"
    info.write_text(json.dumps({**json.loads(info.read_text()), "trained_on": "H200"}))
    recs = collect(tmp_path)
    lines = render("long", recs, aggregate(recs)).splitlines()
    cpu_row = next(ln for ln in lines if "| a2a |" in ln)
    gpu_row = next(ln for ln in lines if "| a2a+k1_nocons_long |" in ln)
    assert "| 35 |" in cpu_row and "wall-min" not in cpu_row
    assert "| 2 wall-min on H200 |" in gpu_row  # train_time_s 150 s; its CPU time is not a CPU-budget figure
    spec = importlib.util.spec_from_file_location("select_best", ROOT / "scripts" / "select_best.py")
    sel = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sel)
    assert sel.choose({"0005000": 0.4, "0010000": 0.4}) == "0010000"
    assert sel.choose({"0005000": 0.5, "0010000": 0.4}) == "0005000"
    spec = importlib.util.spec_from_file_location("parallel_train", ROOT / "scripts" / "parallel_train.py")
    par = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(par)
    args, overrides = par.split_run("peginsertion a2a --seed 1 --tag x_long --demos 300 -- --train.batch_size=256")
    assert overrides == ["--train.batch_size=256"] and par.run_dir(args) == Path("runs/policy/peginsertion/a2a+x_long/seed1")
    with pytest.raises(ValueError, match="TASK RECIPE"):
        par.split_run("peginsertion")


def test_parallel_train_packs_final_checkpoints_first_and_cuts_parts(tmp_path):
    """A machine that hands back little data gets every run's last checkpoint; earlier ones only
    while they fit, and the parts put back together are the tar."""
    import importlib.util
    import tarfile

    spec = importlib.util.spec_from_file_location("parallel_train", ROOT / "scripts" / "parallel_train.py")
    par = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(par)
    runs = []
    for name in ("a", "b"):
        run = tmp_path / "runs" / name
        for step in ("0000500", "0001000"):
            (run / "checkpoints" / step / "pretrained_model").mkdir(parents=True)
            (run / "checkpoints" / step / "pretrained_model" / "model.safetensors").write_bytes(bytes(1000))
        (run / "run_info.json").write_text("{}")
        runs.append(run)
    items, skipped = par.pack_plan(runs, max_bytes=3100)
    finals = [x for x in items if x.name == "pretrained_model"]
    assert [x.parent.name for x in finals] == ["0001000", "0001000", "0000500"]  # both ends, then a's half
    assert [x.parent.parent.parent.name for x in skipped] == ["b"]
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "run0.log").write_text("trained")
    out = tmp_path / "pack"
    out.mkdir()
    parts = par.write_parts(items, logs, out, part_bytes=2048, base=tmp_path)
    assert len(parts) > 1 and not (out / "runs.tar").exists()
    (tmp_path / "whole.tar").write_bytes(b"".join((out / p).read_bytes() for p in parts))
    with tarfile.open(tmp_path / "whole.tar") as tar:
        names = set(tar.getnames())
    assert "runs/a/checkpoints/0000500/pretrained_model/model.safetensors" in names
    assert "runs/b/checkpoints/0000500/pretrained_model/model.safetensors" not in names
    assert {"runs/b/run_info.json", "logs/run0.log"} <= names


def test_policy_run_names_paths_inside_the_repository_relative_and_others_absolute(tmp_path):
    """--runs outside the repository (a scratch folder) works instead of failing on relative_to."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("policy_run", ROOT / "scripts" / "policy_run.py")
    pr = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pr)
    assert pr.rel(ROOT / "runs" / "policy") == Path("runs/policy")
    assert pr.rel(tmp_path / "runs") == (tmp_path / "runs").resolve()


def test_evaluate_parallel_replays_each_runs_training_arguments():
    """The test evaluation of a packed GPU run uses the exact arguments it trained with."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("evaluate_parallel", ROOT / "scripts" / "evaluate_parallel.py")
    ev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ev)
    report = {"runs": [
        {"args": ["peginsertion", "a2a", "--seed", "0", "--tag", "x_long"], "dir": "runs/policy/peginsertion/a2a+x_long/seed0",
         "overrides": ["--train.batch_size=1024", "--train.iterations=8000"]},
        {"args": ["peginsertion", "flow", "--seed", "0", "--tag", "x_long"], "dir": "runs/policy/peginsertion/flow+x_long/seed0",
         "overrides": ["--train.iterations=8000"]}]}
    cmds = ev.commands(report)
    assert cmds[0] == ["scripts/select_best.py", "runs/policy/peginsertion/a2a+x_long/seed0", "--quiet"]
    assert cmds[1] == ["scripts/policy_run.py", "peginsertion", "a2a", "--seed", "0", "--tag", "x_long", "--eval", "1",
                       "--", "--train.batch_size=1024", "--train.iterations=8000"]
    assert cmds[3][7:11] == ["--eval", "1", "--eval", "10"]  # a flow from noise is also scored at ten steps
    assert len(ev.commands(report, only=[1], evals=["2"])) == 2
    with pytest.raises(ValueError, match="runs 0..1"):
        ev.commands(report, only=[2])


def test_image_probe_separates_features_that_locate_the_object_from_those_that_do_not():
    """scripts/image_probe.py's ridge probe: features that hold the position linearly score near
    zero on new scenes; features that only tell the training scenes apart score near the spread."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("image_probe", ROOT / "scripts" / "image_probe.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    rng = np.random.default_rng(0)
    y_tr, y_te = rng.uniform(-0.1, 0.1, (400, 2)), rng.uniform(-0.1, 0.1, (100, 2))
    mix = rng.normal(size=(2, 16))
    good = probe.ridge_probe(y_tr @ mix + 0.001 * rng.normal(size=(400, 16)), y_tr,
                             y_te @ mix + 0.001 * rng.normal(size=(100, 16)), y_te)
    assert good["test_cm"] < 0.1 * good["spread_cm"] and good["spread_cm"] > 5
    # one-hot scene identity: memorises the training positions, knows nothing of new ones
    ids_tr, ids_te = np.eye(400), np.zeros((100, 400))
    bad = probe.ridge_probe(ids_tr, y_tr, ids_te, y_te, lam=1e-3)
    assert bad["train_cm"] < 0.2 * bad["spread_cm"] and bad["test_cm"] > 0.9 * bad["spread_cm"]


def test_image_probe_table_lists_every_encoder_with_its_command():
    from a2a_temporal.commands.policy_table import _image_probe

    d = {"frames": 10, "train_frames": 1000, "test_frames": 300, "command": "python scripts/image_probe.py --x",
         "rows": {"a2a": {"image_pool": "avg", "test_cm": 7.04, "train_cm": 5.1, "spread_cm": 8.4},
                  "supervised 3000 it.": {"image_pool": "spatial_softmax", "test_cm": 1.26, "train_cm": 0.9,
                                          "spread_cm": 8.4, "train_cpu_s": 600.0}}}
    table = _image_probe(d)
    assert "| a2a | avg | 7.0 | 5.1 | 8.4 |" in table
    assert "| supervised 3000 it., 10 CPU-min | spatial_softmax | 1.3 | 0.9 | 8.4 |" in table
    assert "First 10 frames of 100 training and 30 new episodes." in table
