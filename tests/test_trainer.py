"""The shared trainer: exact resume, atomic checkpoints, multi-process agreement."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from a2a_temporal.backbone import TransformerConfig
from a2a_temporal.pretrained import load_pretrained
from a2a_temporal.toy import ToyDataset, ToyFlowModel, ToyModelConfig, ToySystem
from a2a_temporal.training import Trainer, TrainConfig, checkpoint as ckpt_mod

ROOT = Path(__file__).resolve().parents[1]


def make_model():
    torch.manual_seed(0)
    return ToyFlowModel(ToyModelConfig(backbone=TransformerConfig(in_dim=2, preset="tiny", width=32, depth=1)))


def cfg(**kw):
    base = dict(iterations=6, batch_size=8, lr=5e-3, warmup_iterations=2, ema_decay=0.9, log_every=1, seed=3)
    base.update(kw)
    return TrainConfig(**base)


DATA = ToyDataset(ToySystem(), 40, seed=0)


def weights(out: Path, kind="training_state/model.safetensors"):
    return load_file(out / "checkpoints" / "last" / kind)


def test_resume_is_exact(tmp_path):
    Trainer(make_model(), DATA, cfg(), tmp_path / "straight", progress=False).fit()
    # train.stop_after stops (checkpointed) without changing the schedule
    Trainer(make_model(), DATA, cfg(stop_after=3), tmp_path / "split", progress=False).fit()
    assert os.readlink(tmp_path / "split" / "checkpoints" / "last") == "0000003"
    # A fresh process-like start: a different model init and RNG state must not matter.
    torch.manual_seed(123)
    t = Trainer(make_model(), DATA, cfg(resume=True), tmp_path / "split", progress=False)
    assert t.step == 3
    first = t.prior_train_seconds
    assert first > 0  # training time travels in the checkpoint ...
    summary = t.fit()
    # ... so the summary reports the total over both runs
    assert summary["train_time_s"] == pytest.approx(first + summary["train_time_s_this_run"], abs=0.05)
    for kind in ("training_state/model.safetensors", "training_state/ema.safetensors",
                 "pretrained_model/model.safetensors"):
        a, b = weights(tmp_path / "straight", kind), weights(tmp_path / "split", kind)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), (kind, k)
    # Resuming with nothing to resume from is a clear error.
    with pytest.raises(Exception, match="no checkpoint to resume"):
        Trainer(make_model(), DATA, cfg(resume=True), tmp_path / "empty", progress=False)


def test_pretrained_export_holds_ema_and_reloads(tmp_path):
    t = Trainer(make_model(), DATA, cfg(), tmp_path, progress=False)
    summary = t.fit()
    assert summary["iterations"] == 6 and json.loads((tmp_path / "train_summary.json").read_text())["iterations"] == 6
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == list(range(1, 7)) and all("loss" in r for r in lines)
    assert any((tmp_path / "tensorboard").iterdir())
    model = load_pretrained(tmp_path / "checkpoints" / "last" / "pretrained_model")
    prev = torch.randn(5, 2)
    torch.manual_seed(0)
    a = model.predict(prev, steps=2)
    torch.manual_seed(0)
    b = t.eval_model().predict(prev, steps=2)
    assert torch.equal(a, b)


def test_crash_during_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    out = tmp_path / "run"
    Trainer(make_model(), DATA, cfg(iterations=4), out, progress=False).fit(until=2)
    before = weights(out, "pretrained_model/model.safetensors")
    real = ckpt_mod.save_state_dict
    calls = {"n": 0}

    def flaky(state, path, metadata=None):
        calls["n"] += 1
        if calls["n"] == 3:  # in the middle of the step-4 checkpoint
            Path(path).write_bytes(b"half a file")
            raise KeyboardInterrupt("simulated Ctrl-C mid-save")
        return real(state, path, metadata)

    monkeypatch.setattr(ckpt_mod, "save_state_dict", flaky)
    monkeypatch.setattr("a2a_temporal.pretrained.save_state_dict", flaky)
    with pytest.raises(KeyboardInterrupt):
        Trainer(make_model(), DATA, cfg(iterations=4, resume=True), out, progress=False).fit()
    monkeypatch.undo()
    root = out / "checkpoints"
    assert os.readlink(root / "last") == "0000002"
    assert not (root / "0000004").exists()
    assert not list(root.glob(".*tmp*")), "temporary directory left behind"
    after = weights(out, "pretrained_model/model.safetensors")
    assert all(torch.equal(before[k], after[k]) for k in before)
    load_pretrained(root / "last" / "pretrained_model")  # still loadable
    # And training can go on from it.
    Trainer(make_model(), DATA, cfg(iterations=4, resume=True), out, progress=False).fit()
    assert os.readlink(root / "last") == "0000004"


def test_keep_last_prunes_old_checkpoints(tmp_path):
    Trainer(make_model(), DATA, cfg(iterations=6, save_every=1, keep_last=2), tmp_path, progress=False).fit()
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["0000005", "0000006", "last"]


def test_two_processes_match_single_process_gradient_average(tmp_path):
    worker = ROOT / "tests" / "dist_worker.py"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    one = subprocess.run([sys.executable, str(worker), str(tmp_path / "one"), "16", "4"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert one.returncode == 0, one.stderr[-2000:]
    accelerate = Path(sys.executable).with_name("accelerate")
    two = subprocess.run([str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                          "--mixed_precision", "no", "--dynamo_backend", "no", str(worker),
                          str(tmp_path / "two"), "8", "4"],
                         capture_output=True, text=True, env=env, timeout=300)
    assert two.returncode == 0, two.stderr[-2000:]
    m1 = [json.loads(x) for x in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    m2 = [json.loads(x) for x in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    assert len(m1) == len(m2) == 4, "only the main process may log"
    for a, b in zip(m1, m2):  # same global-batch loss and gradient norm at every step
        assert abs(a["grad_norm"] - b["grad_norm"]) < 1e-4 * max(1.0, a["grad_norm"])
        assert abs(a["loss"] - b["loss"]) < 1e-5 * max(1.0, a["loss"])
    w1, w2 = weights(tmp_path / "one"), weights(tmp_path / "two")
    assert max((w1[k] - w2[k]).abs().max().item() for k in w1) < 1e-5
    assert (tmp_path / "two" / "checkpoints" / "last" / "training_state" / "rng_state_1.safetensors").is_file()


def test_refuses_to_overwrite_an_existing_run(tmp_path):
    from a2a_temporal.errors import ConfigError

    Trainer(make_model(), DATA, cfg(iterations=2), tmp_path, progress=False).fit()
    with pytest.raises(ConfigError, match="already holds a training run"):
        Trainer(make_model(), DATA, cfg(iterations=2), tmp_path, progress=False)


def test_resume_with_a_changed_config_is_refused_unless_forced(tmp_path):
    from a2a_temporal.errors import ConfigError

    run = {"train": {"lr": 5e-3, "iterations": 4, "threads": 1}, "policy": {"objective": {"name": "a2a"}}}
    Trainer(make_model(), DATA, cfg(iterations=4, stop_after=2), tmp_path, run_config=run, progress=False).fit()
    changed = {"train": {"lr": 1e-3, "iterations": 4, "threads": 2}, "policy": {"objective": {"name": "flow"}}}
    with pytest.raises(ConfigError, match=r"policy.objective.name: 'a2a' -> 'flow'.*train.lr: 0.005 -> 0.001"):
        Trainer(make_model(), DATA, cfg(iterations=4, resume=True), tmp_path, run_config=changed, progress=False)
    # Bookkeeping keys (threads here) may change; forcing accepts the rest.
    same = {"train": {"lr": 5e-3, "iterations": 4, "threads": 2}, "policy": {"objective": {"name": "a2a"}}}
    Trainer(make_model(), DATA, cfg(iterations=4, resume=True), tmp_path, run_config=same, progress=False)
    t = Trainer(make_model(), DATA, cfg(iterations=4, resume=True, force_resume=True), tmp_path, run_config=changed,
                progress=False)
    assert t.step == 2
    # A run written before a key was renamed still compares equal after migration.
    legacy = {"train": {"lr": 5e-3, "steps": 4, "threads": 1}, "policy": {"objective": {"name": "a2a"}}}
    (tmp_path / "run_config.json").write_text(json.dumps(legacy))
    Trainer(make_model(), DATA, cfg(iterations=4, resume=True), tmp_path, run_config=run, progress=False)


def test_stale_replacement_leftovers_are_removed(tmp_path):
    from a2a_temporal.pretrained import atomic_directory

    final = tmp_path / "ckpt"
    stale = tmp_path / ".ckpt.old-12345"  # a replacement that crashed between its two renames
    stale.mkdir()
    (stale / "x").write_text("old")
    with atomic_directory(final) as tmp:
        (tmp / "a").write_text("1")
    with atomic_directory(final) as tmp:
        (tmp / "a").write_text("2")
    assert (final / "a").read_text() == "2" and not stale.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
