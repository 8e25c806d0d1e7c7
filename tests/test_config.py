"""Config parsing: YAML + dotted overrides through draccus, one-line errors."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from a2a_temporal.config import load_config, parse_cli
from a2a_temporal.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "demos"))
from toy_single_step import ToyDemoConfig  # noqa: E402


def test_yaml_and_overrides():
    cfg = load_config(ToyDemoConfig, ROOT / "configs/toy/default.yaml", ["--train.iterations=7", "--backbone.preset=small"])
    assert cfg.train.iterations == 7 and cfg.backbone.preset == "small" and cfg.backbone.width == 256
    assert cfg.train.lr == 0.001  # from the YAML
    cfg = parse_cli(ToyDemoConfig, ["--config", str(ROOT / "configs/toy/default.yaml"), "--train.seed", "5"])
    assert cfg.train.seed == 5


def test_an_override_keeps_the_values_a_section_factory_chose():
    """A section built by a default_factory keeps the factory's values when one key of it is
    overridden (draccus alone would rebuild the section from the class defaults)."""
    from a2a_temporal.commands.train_video import TrainVideoConfig
    from a2a_temporal.policy_setup import TrainPolicyConfig

    c = parse_cli(TrainVideoConfig, ["--output-dir", "x", "--train.iterations=3"])
    assert (c.train.iterations, c.train.lr, c.train.best_metric, c.data.frame_stride) == (3, 5e-4, "val_psnr", 4)
    c = parse_cli(TrainPolicyConfig, ["--config", str(ROOT / "configs/policy/pushcube_state.yaml"),
                                      "--policy.objective.rollout_k=1"])
    o = c.policy.objective  # the default objective is A2A's recipe; only K changes
    assert (o.name, o.rollout_weight, o.rollout_k, o.rollout_batch_size) == ("a2a", 1.0, 1, 32)
    c = parse_cli(TrainPolicyConfig, ["--config", str(ROOT / "configs/policy/pushcube_state.yaml"),
                                      "--config", str(ROOT / "configs/policy/recipes/flow.yaml")])
    assert c.policy.objective.rollout_weight == 0.0  # a recipe's explicit values still win
    toy = parse_cli(ToyDemoConfig, ["--backbone.depth=1", "--train.iterations=5"])  # derived fields stay derived
    assert (toy.backbone.in_dim, toy.backbone.preset, toy.backbone.depth) == (2, "tiny", 1)
    assert (toy.train.iterations, toy.train.batch_size, toy.train.lr) == (5, 256, 1e-3)
    assert parse_cli(ToyDemoConfig, ["--backbone.preset=small"]).backbone.width == 256  # not pinned to tiny's


def test_the_k1_nocons_recipe_is_a2a_with_its_two_overrides():
    """`recipes/a2a_k1_nocons.yaml` is the paper's recipe with the two overrides the README's
    `a2a+k1_nocons` rows were trained with, and nothing else."""
    import dataclasses

    from a2a_temporal.policy_setup import TrainPolicyConfig

    task = ["--config", str(ROOT / "configs/policy/stackcube_state.yaml"), "--output-dir", "x"]
    named = parse_cli(TrainPolicyConfig, task + ["--config", str(ROOT / "configs/policy/recipes/a2a_k1_nocons.yaml")])
    paper = parse_cli(TrainPolicyConfig, task + ["--config", str(ROOT / "configs/policy/recipes/a2a.yaml")])
    by_hand = parse_cli(TrainPolicyConfig, task + ["--config", str(ROOT / "configs/policy/recipes/a2a.yaml"),
                                                   "--policy.objective.rollout_weight=0",
                                                   "--policy.objective.rollout_k=1"])
    assert dataclasses.asdict(named) == dataclasses.asdict(by_hand)
    assert dataclasses.asdict(named) != dataclasses.asdict(paper)
    assert (named.policy.objective.rollout_weight, named.policy.objective.rollout_k) == (0.0, 1)


def test_the_rgb_aux_configs_are_the_rgb_configs_with_the_overrides_of_their_rows():
    """`pickcube_rgb_aux.yaml` is `pickcube_rgb.yaml` with the overrides the README's `+kp_aux` rows
    were trained with, and nothing else; the same for `pushcube_rgb_aux.yaml`."""
    import dataclasses

    from a2a_temporal.policy_setup import TrainPolicyConfig

    named = parse_cli(TrainPolicyConfig, ["--config", str(ROOT / "configs/policy/pickcube_rgb_aux.yaml")])
    by_hand = parse_cli(TrainPolicyConfig, ["--config", str(ROOT / "configs/policy/pickcube_rgb.yaml"),
                                            "--policy.image_pool=spatial_softmax", "--policy.image_output_stride=8",
                                            "--policy.image_aux_weight=1.0", "--train.iterations=4000",
                                            "--train.eval_every=2000"])
    assert dataclasses.asdict(named) == dataclasses.asdict(by_hand)
    assert named.policy.uses_image_aux and named.policy.image_aux_actor == "cube"
    push = parse_cli(TrainPolicyConfig, ["--config", str(ROOT / "configs/policy/pushcube_rgb_aux.yaml")])
    push_by_hand = parse_cli(TrainPolicyConfig, ["--config", str(ROOT / "configs/policy/pushcube_rgb.yaml"),
                                                 "--policy.image_pool=spatial_softmax",
                                                 "--policy.image_output_stride=8", "--policy.image_aux_weight=1.0"])
    assert dataclasses.asdict(push) == dataclasses.asdict(push_by_hand)


def test_unknown_cli_key_names_it():
    with pytest.raises(ConfigError, match=r"--train.stepz.*no field 'stepz'"):
        load_config(ToyDemoConfig, None, ["--train.stepz=3"])


def test_wrong_type_names_key():
    with pytest.raises(ConfigError, match="abc"):
        load_config(ToyDemoConfig, None, ["--train.iterations=abc"])


def test_unknown_yaml_key_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  iterations: 5\n  bogus: 1\n")
    with pytest.raises(ConfigError) as err:
        load_config(ToyDemoConfig, bad)
    assert "bogus" in str(err.value) and str(bad) in str(err.value)


def test_cross_field_rule_message():
    with pytest.raises(ConfigError, match="train.batch_size must be >= 1, got 0"):
        load_config(ToyDemoConfig, None, ["--train.batch_size=0"])


def test_missing_config_file():
    with pytest.raises(ConfigError, match="nope.yaml not found"):
        load_config(ToyDemoConfig, "nope.yaml")


def test_tool_prints_one_line_error_and_exits_nonzero():
    r = subprocess.run([sys.executable, str(ROOT / "demos/toy_single_step.py"), "--train.bogus=1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "bogus" in lines[0]


def test_toy_demo_runs_twice(tmp_path):
    """A second ``make toy`` reuses the trained models instead of refusing the existing runs."""
    import subprocess
    import sys

    args = [sys.executable, str(ROOT / "demos/toy_single_step.py"), "--config", str(ROOT / "configs/toy/default.yaml"),
            f"--out={tmp_path}", "--train.iterations=3", "--train.log_every=1", "--train_samples=300",
            "--test_samples=100", "--backbone.width=32", "--backbone.depth=1", "--train.batch_size=32"]
    first = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    second = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "already trained" in second.stdout
    a = json.loads((tmp_path / "toy_results.json").read_text())["error_to_true_next"]
    assert set(a) == {"a2a", "flow"}
    changed = subprocess.run(args[:-1] + ["--train.batch_size=16"], capture_output=True, text=True, timeout=600)
    assert changed.returncode == 0 and "already trained" not in changed.stdout
