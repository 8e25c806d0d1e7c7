"""The generic flow core: path, time samplers, solvers, objectives."""
import math
import subprocess
import sys

import pytest
import torch

from a2a_temporal.flow import (DEFAULT_STEPS, OBJECTIVES, ObjectiveConfig, StraightPath, build_objective,
                               build_time_sampler, sample_loss, solve)

# ----------------------------------------------------------------------------- solvers


def cubic_velocity(x, t):  # dx/dt = 3 t^2  ->  x(t) = x0 + t^3
    return 3 * t[:, None] ** 2 * torch.ones_like(x)


def exp_velocity(x, t):  # dx/dt = x  ->  x(t) = x0 e^t
    return x


@pytest.mark.parametrize("method,order", [("euler", 1), ("midpoint", 2), ("heun", 2)])
@pytest.mark.parametrize("velocity,exact", [(cubic_velocity, lambda x0: x0 + 1.0),
                                            (exp_velocity, lambda x0: x0 * math.e)])
def test_solver_order_of_accuracy(method, order, velocity, exact):
    x0 = torch.tensor([[0.5], [-1.0]], dtype=torch.float64)
    errs = []
    for n in (8, 16, 32, 64):
        x1 = solve(velocity, x0, steps=n, method=method)
        assert x1.dtype == torch.float64
        errs.append((x1 - exact(x0)).abs().max().item())
    rates = [math.log2(a / b) for a, b in zip(errs, errs[1:])]
    assert all(abs(r - order) < 0.15 for r in rates), (method, errs, rates)
    assert errs[-1] < (5e-2 if order == 1 else 2e-4)


def test_cubic_known_answer_float64():
    x0 = torch.zeros(3, 2, dtype=torch.float64)
    x1, path = solve(cubic_velocity, x0, steps=1000, method="heun", return_path=True)
    assert len(path) == 1001
    assert torch.allclose(x1, torch.ones_like(x1), atol=1e-6)
    assert torch.allclose(path[500], torch.full_like(x1, 0.5 ** 3), atol=1e-6)


def test_euler_one_step_is_one_model_call():
    calls = []

    def v(x, t):
        calls.append(t.clone())
        return x

    solve(v, torch.zeros(4, 3), steps=1, method="euler")
    assert len(calls) == 1 and torch.all(calls[0] == 0)
    calls.clear()
    solve(v, torch.zeros(4, 3), steps=5, method="heun")
    assert len(calls) == 10


def test_solver_rejects_bad_arguments():
    with pytest.raises(ValueError, match="rk4"):
        solve(exp_velocity, torch.zeros(1, 1), steps=2, method="rk4")
    with pytest.raises(ValueError, match="steps"):
        solve(exp_velocity, torch.zeros(1, 1), steps=0)


# ----------------------------------------------------------------------------- path


def test_exact_straight_velocity_one_step_and_zero_loss():
    torch.manual_seed(0)
    x0 = torch.randn(16, 5, 3, dtype=torch.float64)
    x1 = torch.randn(16, 5, 3, dtype=torch.float64)
    # The model is handed the true displacement as its condition: the exact velocity field.
    exact = lambda x, t, cond: cond  # noqa: E731
    obj = build_objective(ObjectiveConfig(name="a2a"))
    out = obj.sample(exact, x0, cond=x1 - x0, steps=1)
    assert (out - x1).abs().max() < 1e-6
    loss, info = obj.loss(exact, x0, x1, cond=x1 - x0)
    assert loss.item() == 0.0 and info["loss_flow"].item() == 0.0


def test_path_endpoints_and_velocity_is_time_derivative():
    torch.manual_seed(0)
    x0, x1, z = torch.randn(3, 4, 2, dtype=torch.float64).unbind(0)
    for path in (StraightPath(), StraightPath(bridge_sigma=0.7)):
        ones, zeros = torch.ones(4, dtype=torch.float64), torch.zeros(4, dtype=torch.float64)
        assert torch.allclose(path.sample(x0, x1, zeros, z)[0], x0)
        assert torch.allclose(path.sample(x0, x1, ones, z)[0], x1)
        t, h = torch.full((4,), 0.3, dtype=torch.float64), 1e-6
        fd = (path.sample(x0, x1, t + h, z)[0] - path.sample(x0, x1, t - h, z)[0]) / (2 * h)
        assert torch.allclose(fd, path.sample(x0, x1, t, z)[1], atol=1e-6)


def test_start_point_noise_perturbs_only_when_set():
    x0 = torch.zeros(1000, 2)
    assert StraightPath().perturb_source(x0) is x0
    std = StraightPath(start_point_noise=0.1).perturb_source(x0).std().item()
    assert 0.09 < std < 0.11
    with pytest.raises(ValueError, match="start_point_noise"):
        StraightPath(start_point_noise=-1.0)


@pytest.mark.parametrize("name,kw,mean", [("uniform", {}, 0.5), ("logit_normal", {}, 0.5),
                                           ("beta", {"a": 1.0, "b": 3.0}, 0.25)])
def test_time_samplers(name, kw, mean):
    torch.manual_seed(0)
    t = build_time_sampler(name, **kw)(20000)
    assert t.shape == (20000,) and t.min() >= 0 and t.max() <= 1
    assert abs(t.mean().item() - mean) < 0.01


def test_source_time_prob_puts_that_share_of_times_at_the_source():
    from a2a_temporal.flow import SourceMixTime
    base = build_time_sampler("beta", a=1.0, b=3.0)
    torch.manual_seed(0)
    t = SourceMixTime(base, 0.3)(20000)
    assert abs((t == 0).float().mean().item() - 0.3) < 0.015 and t.max() <= 1
    torch.manual_seed(0)
    a = SourceMixTime(base, 0.0)(100)
    torch.manual_seed(0)
    assert torch.equal(a, base(100))  # p = 0 draws exactly what the base sampler draws
    with pytest.raises(ValueError, match="1.5"):
        SourceMixTime(base, 1.5)
    with pytest.raises(ValueError, match="source_time_prob=0.5 applies to objective.name=a2a"):
        ObjectiveConfig(name="flow", source_time_prob=0.5)
    with pytest.raises(ValueError, match="-0.1"):
        ObjectiveConfig(source_time_prob=-0.1)


def test_a2a_with_every_time_at_the_source_is_the_residual_regression():
    """t = 0 always: the a2a loss equals the residual regression's on the same batch, and both
    predict x0 + model(x0, 0) in one call."""
    torch.manual_seed(0)
    x0, x1, cond = torch.randn(8, 5, 3), torch.randn(8, 5, 3), torch.randn(8, 5, 3)
    net = torch.nn.Linear(4, 3)
    model = lambda x, t, c: net(torch.cat([x + c, t.view(-1, 1, 1).expand(-1, x.shape[1], 1)], -1))  # noqa: E731
    a2a = build_objective(ObjectiveConfig(name="a2a", source_time_prob=1.0))
    reg = build_objective(ObjectiveConfig(name="regression", regression_residual=True))
    la, _ = a2a.loss(model, x0, x1, cond)
    lr, _ = reg.loss(model, x0, x1, cond)
    assert torch.allclose(la, lr)
    assert torch.allclose(a2a.sample(model, x0, cond, steps=1), reg.sample(model, x0, cond))
    half = build_objective(ObjectiveConfig(name="a2a", source_time_prob=0.5))
    torch.manual_seed(1)
    lh, _ = half.loss(model, x0, x1, cond)
    assert not torch.allclose(lh, la)  # the other half of the batch is drawn along the path


def test_unknown_time_sampler():
    with pytest.raises(ValueError, match="cosine"):
        build_time_sampler("cosine")


# ----------------------------------------------------------------------------- objectives


class Counting(torch.nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.lin = torch.nn.Linear(dim + 1, dim)
        self.calls = 0

    def forward(self, x, t, cond):
        self.calls += 1
        tt = t[:, None, None].expand(*x.shape[:2], 1)
        return self.lin(torch.cat([x, tt], dim=-1)) + (0 if cond is None else cond.mean(1, keepdim=True))


@pytest.mark.parametrize("name", OBJECTIVES)
def test_every_objective_same_interface(name):
    torch.manual_seed(0)
    obj = build_objective(ObjectiveConfig(name=name))
    model = Counting(3)
    x0, x1, cond = torch.randn(4, 6, 3), torch.randn(4, 6, 3), torch.randn(4, 2, 3)
    loss, info = obj.loss(model, x0, x1, cond)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert sum(p.grad.abs().sum() for p in model.parameters()) > 0
    assert all(torch.is_tensor(v) for v in info.values())
    model.calls = 0
    with torch.no_grad():
        out = obj.sample(model, x0, cond)
    assert out.shape == x0.shape
    assert model.calls == obj.model_calls() == DEFAULT_STEPS[name]
    assert obj.uses_source == (name == "a2a")


def test_non_source_objectives_ignore_source_values():
    model = Counting(3)
    for name in ("flow", "ddim", "regression", "mip"):
        obj = build_objective(ObjectiveConfig(name=name))
        outs = []
        for x0 in (torch.zeros(2, 4, 3), 5 + torch.randn(2, 4, 3)):
            torch.manual_seed(1)
            with torch.no_grad():
                outs.append(obj.sample(model, x0, None, steps=4))
        assert torch.equal(outs[0], outs[1]), name


def test_rollout_consistency_backprops_through_k_steps():
    torch.manual_seed(0)
    obj = build_objective(ObjectiveConfig(name="a2a", rollout_weight=1.0, rollout_k=3))
    model = Counting(3)
    x0, x1 = torch.randn(4, 6, 3), torch.randn(4, 6, 3)
    loss, info = obj.loss(model, x0, x1)
    assert model.calls == 1 + 3
    assert info["x1_rollout"].requires_grad
    assert torch.allclose(loss, info["loss_flow"] + info["loss_rollout"])
    plain = build_objective(ObjectiveConfig(name="a2a"))
    assert "x1_rollout" not in plain.loss(model, x0, x1)[1]
    assert "x1_rollout" in plain.loss(model, x0, x1, return_rollout=True)[1]


def test_ddpm_learns_time_convention():
    # diffusion timestep k = T-1 (noisiest) must reach the model as t close to 0.
    seen = []
    obj = build_objective(ObjectiveConfig(name="ddpm"))

    def model(x, t, cond):
        seen.append(t.clone())
        return torch.zeros_like(x)

    obj.sample(model, torch.zeros(1, 2, 2), steps=100)
    assert len(seen) == 100
    assert seen[0].item() < 0.05 and seen[-1].item() == 1.0


def test_objective_config_errors_name_the_value():
    with pytest.raises(ValueError, match="'dpm'"):
        ObjectiveConfig(name="dpm")
    with pytest.raises(ValueError, match="mip_t_star"):
        ObjectiveConfig(name="mip", mip_t_star=1.5)


def test_log_mse_sample_loss_weighs_samples_by_relative_error():
    torch.manual_seed(0)
    target = torch.randn(4, 3, 8)
    pred = target + torch.randn(4, 3, 8) * torch.tensor([1e-3, 1e-2, 1e-1, 1.0])[:, None, None]
    per = (pred - target).pow(2).flatten(1).mean(1)
    assert torch.allclose(sample_loss(pred, target, "mse"), torch.nn.functional.mse_loss(pred, target))
    assert torch.allclose(sample_loss(pred, target, "log_mse", eps=1e-9), torch.log(per + 1e-9).mean())
    # Scaling every sample's error by c shifts the log loss by 2 log c: only relative error counts.
    shifted = sample_loss(target + 3 * (pred - target), target, "log_mse", eps=1e-12)
    assert abs(shifted.item() - sample_loss(pred, target, "log_mse", eps=1e-12).item() - 2 * math.log(3)) < 1e-4
    # Under plain MSE the sample with the largest error gets nearly all the gradient; under the log
    # loss every sample's gradient norm is ~2/(B sqrt(n) rms_i): the smallest error pulls hardest.
    grads = {}
    for kind in ("mse", "log_mse"):
        p = pred.clone().requires_grad_(True)
        sample_loss(p, target, kind, eps=1e-12).backward()
        grads[kind] = p.grad.flatten(1).norm(dim=1)
    assert grads["mse"].argmax().item() == 3 and grads["log_mse"].argmax().item() == 0
    with pytest.raises(ValueError, match="'l1'"):
        sample_loss(pred, target, "l1")


@pytest.mark.parametrize("name,kw", [("a2a", {}), ("flow", {}), ("regression", {"regression_residual": True})])
def test_objectives_train_on_the_log_sample_loss(name, kw):
    torch.manual_seed(0)
    x0, x1 = torch.randn(8, 5, 3), torch.randn(8, 5, 3)
    net = torch.nn.Linear(3, 3)
    model = lambda x, t, cond: net(x)  # noqa: E731
    plain = build_objective(ObjectiveConfig(name=name, **kw))
    logged = build_objective(ObjectiveConfig(name=name, sample_loss="log_mse", sample_loss_eps=1e-4, **kw))
    torch.manual_seed(1)
    a, info_a = plain.loss(model, x0, x1)
    torch.manual_seed(1)
    b, info_b = logged.loss(model, x0, x1)
    key = "loss_regression" if name == "regression" else "loss_flow"
    assert torch.allclose(info_a[key], info_b[key])  # the plain MSE is still logged
    assert "loss_log_mse" in info_b and torch.allclose(b, info_b["loss_log_mse"]) and not torch.allclose(a, b)
    b.backward()
    assert net.weight.grad.abs().sum() > 0


def test_sample_loss_config_errors_name_the_value():
    with pytest.raises(ValueError, match="'l1'"):
        ObjectiveConfig(sample_loss="l1")
    with pytest.raises(ValueError, match="'ddpm'"):
        ObjectiveConfig(name="ddpm", sample_loss="log_mse")
    with pytest.raises(ValueError, match="sample_loss_eps"):
        ObjectiveConfig(sample_loss="log_mse", sample_loss_eps=0.0)


def test_flow_package_imports_torch_only():
    code = ("import sys, a2a_temporal.flow, a2a_temporal.backbone; "
            "bad = [m for m in ('mani_skill', 'diffusers', 'decord', 'av', 'timm', 'sapien', 'draccus') "
            "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
