"""Training objectives with one interface, so a head swaps its objective by config.

Every objective implements::

    loss(model, x0, x1, cond=None) -> (loss, info)
    sample(model, x0, cond=None, steps=None, method=None) -> x1_hat

where ``model(x (B, ...), t (B,), cond) -> (B, ...)`` is any network (in this toolkit a
:class:`~a2a_temporal.backbone.FlowTransformer`), ``x0`` is the source (previous-thing
embedding), ``x1`` the target, both ``(B, ...)``. Objectives whose ``uses_source`` is False
(Gaussian flow, DDPM/DDIM, regression, MIP) read only the shape, dtype and device of ``x0``.
``t`` follows the toolkit's convention: 0 is the source / noise end, 1 the target end.

``info`` holds detached scalar tensors for logging; when a rollout was computed (rollout
consistency, or ``return_rollout=True``) it also holds ``info["x1_rollout"]``, the objective's own
sampler run *with* its autograd graph, for the first ``info["rollout_rows"]`` samples of the batch,
so heads can add losses on decoded rollouts.

Auxiliary rollout terms go through each objective's own differentiable sampler
(:meth:`Objective.rollout`): ``a2a`` / ``flow``: ``rollout_k`` Euler steps from the source;
``regression``: its one call; ``mip``: its two calls. DDPM / DDIM have none (backpropagating
through 100 denoising steps is not offered): their rollout weights must stay 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from .path import StraightPath
from .solvers import CALLS_PER_STEP, METHODS, solve
from .time import SourceMixTime, build_time_sampler

Model = Callable[[torch.Tensor, torch.Tensor, Optional[torch.Tensor]], torch.Tensor]

OBJECTIVES = ("a2a", "flow", "ddpm", "ddim", "regression", "mip")
DEFAULT_STEPS = {"a2a": 1, "flow": 10, "ddpm": 100, "ddim": 10, "regression": 1, "mip": 2}
DIFFUSION_SAMPLERS = ("ddpm", "ddim")
SAMPLE_LOSSES = ("mse", "log_mse")
# Objectives whose own loss is one prediction against one target, where the per-sample loss applies.
SAMPLE_LOSS_OBJECTIVES = ("a2a", "flow", "regression")


def sample_loss(pred: torch.Tensor, target: torch.Tensor, kind: str = "mse", eps: float = 1e-3) -> torch.Tensor:
    """Loss between ``pred`` and ``target`` ``(B, ...)``.

    ``mse``: the mean squared error over all elements. ``log_mse``: the mean over samples of
    ``log(MSE_i + eps)``, each sample's own mean squared error on a log scale. That is minus the
    mean per-sample PSNR up to constants, so every sample counts by its *relative* error: a
    nearly still video frame, whose change from the previous one is tiny, weighs as much as one
    in fast motion, which plain MSE lets the moving frames dominate. ``eps`` (in the target's
    squared units) is the error below which a sample stops gaining weight.
    """
    if kind == "mse":
        return F.mse_loss(pred, target)
    if kind != "log_mse":
        raise ValueError(f"sample loss must be one of {list(SAMPLE_LOSSES)}, got {kind!r}")
    per_sample = (pred - target).pow(2).flatten(1).mean(dim=1)  # (B,)
    return torch.log(per_sample + eps).mean()


@dataclass
class ObjectiveConfig:
    """Which objective trains the model and how it samples. Plain dataclass (no config library).

    name: ``a2a`` (flow from the given source), ``flow`` (flow from Gaussian noise), ``ddpm``,
    ``ddim``, ``regression`` (one call from zeros) or ``mip`` (two-step minimal iterative policy).
    """

    name: str = "a2a"
    # Inference defaults (tools may override per call). None: 1 for a2a, 10 flow, 100 ddpm, ...
    num_inference_steps: Optional[int] = None
    # Sampler: euler | midpoint | heun for a2a / flow; ddpm | ddim for the diffusion objectives
    # (None: euler, or the diffusion objective's own name). A ddpm-trained model samples with ddim.
    method: Optional[str] = None
    # Flow objectives.
    time_sampler: str = "uniform"  # uniform | logit_normal | beta
    logit_normal_mean: float = 0.0
    logit_normal_std: float = 1.0
    beta_a: float = 1.0
    beta_b: float = 1.5
    # a2a only: draw t = 0 exactly (the source, the one time one-step sampling reads) with this
    # probability, otherwise from time_sampler; 1 trains only t = 0 (the residual regression).
    source_time_prob: float = 0.0
    # N(0, s^2) on the flow's start point x0 (the *encoded* source), train and inference; the
    # head's policy.history_input_noise perturbs the raw history before encoding instead.
    start_point_noise: float = 0.0
    bridge_sigma: float = 0.0  # stochastic-interpolant term, zero at both ends
    # Consistency: MSE(rollout(x0), x1) through the objective's own differentiable sampler
    # (a2a / flow: rollout_k Euler steps, backprop through all of them).
    rollout_weight: float = 0.0
    rollout_k: int = 6  # K of the training rollout (not the inference step count)
    rollout_batch_size: int = 0  # rollout terms on the first N samples of a batch (0: all)
    # DDPM / DDIM (diffusers schedulers).
    num_train_timesteps: int = 100
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "epsilon"  # epsilon | sample | v_prediction
    clip_sample: bool = False
    clip_sample_range: float = 1.0
    # Regression: predict the target directly (False) or as the source plus a learned change
    # (True: x1_hat = x0 + model(x0, t=0, cond), one call; the residual parameterisation).
    regression_residual: bool = False
    # The objective's own loss (a2a, flow, regression): mse over the batch, or log_mse, the mean of
    # log(per-sample MSE + sample_loss_eps), which weighs each sample by its relative error (minus
    # the mean per-sample PSNR up to constants; see sample_loss).
    sample_loss: str = "mse"
    sample_loss_eps: float = 1e-3
    # MIP.
    mip_t_star: float = 0.9

    def __post_init__(self) -> None:
        if self.name not in OBJECTIVES:
            raise ValueError(f"objective.name={self.name!r} is not one of {list(OBJECTIVES)}")
        check_method(self.name, self.method, "objective.method")
        if self.num_inference_steps is not None and self.num_inference_steps < 1:
            raise ValueError(f"objective.num_inference_steps must be >= 1, got {self.num_inference_steps}")
        if self.rollout_k < 1:
            raise ValueError(f"objective.rollout_k must be >= 1, got {self.rollout_k}")
        if self.rollout_batch_size < 0:
            raise ValueError(f"objective.rollout_batch_size must be >= 0, got {self.rollout_batch_size}")
        if self.start_point_noise < 0:
            raise ValueError(f"objective.start_point_noise must be >= 0, got {self.start_point_noise}")
        if self.rollout_weight < 0:
            raise ValueError(f"objective.rollout_weight must be >= 0, got {self.rollout_weight}")
        if self.name in DIFFUSION_SAMPLERS and self.rollout_weight > 0:
            raise ValueError(f"objective.rollout_weight={self.rollout_weight}: {self.name} has no differentiable "
                             "sampler to roll out through; set it to 0")
        if self.regression_residual and self.name != "regression":
            raise ValueError(f"objective.regression_residual=true applies to objective.name=regression, not {self.name!r}")
        if not 0.0 <= self.source_time_prob <= 1.0:
            raise ValueError(f"objective.source_time_prob must be in [0, 1], got {self.source_time_prob}")
        if self.source_time_prob > 0 and self.name != "a2a":
            raise ValueError(f"objective.source_time_prob={self.source_time_prob} applies to objective.name=a2a "
                             f"(t = 0 is the given source), not {self.name!r}")
        if self.sample_loss not in SAMPLE_LOSSES:
            raise ValueError(f"objective.sample_loss={self.sample_loss!r} is not one of {list(SAMPLE_LOSSES)}")
        if self.sample_loss != "mse" and self.name not in SAMPLE_LOSS_OBJECTIVES:
            raise ValueError(f"objective.sample_loss={self.sample_loss!r} applies to {list(SAMPLE_LOSS_OBJECTIVES)}, "
                             f"not {self.name!r}")
        if not self.sample_loss_eps > 0:
            raise ValueError(f"objective.sample_loss_eps must be > 0, got {self.sample_loss_eps}")
        if not 0.0 < self.mip_t_star < 1.0:
            raise ValueError(f"objective.mip_t_star must lie in (0, 1), got {self.mip_t_star}")
        if self.prediction_type not in ("epsilon", "sample", "v_prediction"):
            raise ValueError(f"objective.prediction_type={self.prediction_type!r} is not one of "
                             "['epsilon', 'sample', 'v_prediction']")


def check_method(objective: str, method: str | None, what: str = "method") -> None:
    """``method`` must be a solver of a flow objective or a sampler of a diffusion objective."""
    if method is None:
        return
    allowed = DIFFUSION_SAMPLERS if objective in DIFFUSION_SAMPLERS else METHODS
    if objective in ("regression", "mip"):
        allowed = (None,)
    if method not in allowed:
        raise ValueError(f"{what}={method!r} does not apply to objective {objective!r}; expected one of "
                         f"{[m for m in allowed if m is not None] or 'none (it has a fixed sampler)'}")


def check_steps(steps: int | None, what: str = "num_inference_steps") -> None:
    """``None`` (the objective's default) or a positive integer; 0 is an error, never 'default'."""
    if steps is not None and (int(steps) != steps or steps < 1):
        raise ValueError(f"{what} must be a positive integer (or omitted for the objective's default), got {steps!r}")


class Objective:
    """Base class: shared bookkeeping and the auxiliary rollout-consistency term.

    Subclasses implement ``_loss`` (their own training loss) and ``sample``; those that have a
    differentiable sampler also implement ``rollout``.
    """

    name: str = "objective"
    uses_source: bool = False
    default_steps: int = 1
    default_method: str | None = None
    rollout_weight: float = 0.0
    rollout_batch_size: int = 0
    loss_kind: str = "mse"  # see sample_loss
    loss_eps: float = 1e-3

    def _fit(self, pred: torch.Tensor, target: torch.Tensor, key: str):
        """``(loss, info)`` of one prediction against its target: the configured per-sample loss,
        with the plain MSE logged under ``key`` whatever the loss (and the log loss beside it)."""
        mse = F.mse_loss(pred, target)
        info = {key: mse.detach()}
        if self.loss_kind == "mse":
            return mse, info
        loss = sample_loss(pred, target, self.loss_kind, self.loss_eps)
        info["loss_" + self.loss_kind] = loss.detach()
        return loss, info

    def _loss(self, model: Model, x0: torch.Tensor, x1: torch.Tensor, cond=None):
        """``(loss, info, start)``: the objective's own loss; ``start`` is the flow start it drew."""
        raise NotImplementedError

    def rollout(self, model: Model, x0: torch.Tensor, cond=None, start: torch.Tensor | None = None) -> torch.Tensor:
        """The sampler used for auxiliary terms, with its autograd graph kept."""
        raise NotImplementedError(f"objective {self.name!r} has no differentiable sampler for rollout terms")

    @property
    def has_rollout(self) -> bool:
        return type(self).rollout is not Objective.rollout

    def loss(self, model: Model, x0: torch.Tensor, x1: torch.Tensor, cond=None, *,
             return_rollout: bool = False):
        """Own loss, plus ``rollout_weight * MSE(rollout(x0), x1)`` on the first
        ``rollout_batch_size`` samples when the weight is > 0."""
        if x0.shape != x1.shape:
            raise ValueError(f"x0 {tuple(x0.shape)} and x1 {tuple(x1.shape)} must have the same shape")
        loss, info, start = self._loss(model, x0, x1, cond)
        if self.rollout_weight > 0 or return_rollout:
            n = self.rollout_batch_size or x1.shape[0]
            n = min(n, x1.shape[0])
            sub = (lambda v: None if v is None else v[:n])
            x1_hat = self.rollout(model, x0[:n], sub(cond), start=sub(start))
            cons = F.mse_loss(x1_hat, x1[:n])
            info["loss_rollout"] = cons.detach()
            info["x1_rollout"] = x1_hat
            info["rollout_rows"] = n
            if self.rollout_weight > 0:
                loss = loss + self.rollout_weight * cons
        return loss, info

    def sample(self, model: Model, x0: torch.Tensor, cond=None, steps: int | None = None,
               method: str | None = None) -> torch.Tensor:
        raise NotImplementedError

    def model_calls(self, steps: int | None = None, method: str | None = None) -> int:
        """Network evaluations that one ``sample`` call costs."""
        return int(steps or self.default_steps)


class SourceToTargetFlow(Objective):
    """Flow matching on the straight path from a source to the target.

    ``source="given"`` is A2A / frame-to-frame: the flow starts at the ``x0`` the head passes
    (an embedding of the previous actions or frame). ``source="gaussian"`` is ordinary flow
    matching: ``x0`` is replaced by ``N(0, I)`` noise of the same shape. Everything else is shared,
    so the comparison between the two isolates the choice of source.
    """

    def __init__(self, source: str = "given", path: StraightPath | None = None,
                 time_sampler=None, rollout_weight: float = 0.0, rollout_k: int = 6,
                 default_steps: int = 1, default_method: str | None = "euler", rollout_batch_size: int = 0,
                 loss_kind: str = "mse", loss_eps: float = 1e-3):
        if source not in ("given", "gaussian"):
            raise ValueError(f"source must be 'given' or 'gaussian', got {source!r}")
        self.source = source
        self.name = "a2a" if source == "given" else "flow"
        self.uses_source = source == "given"
        self.path = path or StraightPath()
        self.time_sampler = time_sampler or build_time_sampler("uniform")
        self.rollout_weight = float(rollout_weight)
        self.rollout_k = int(rollout_k)
        self.rollout_batch_size = int(rollout_batch_size)
        self.default_steps = int(default_steps)
        self.default_method = default_method or "euler"
        self.loss_kind, self.loss_eps = loss_kind, float(loss_eps)

    def source_of(self, x0: torch.Tensor) -> torch.Tensor:
        """The actual flow start: the (optionally noised) given source, or fresh noise."""
        if self.source == "gaussian":
            return torch.randn_like(x0)
        return self.path.perturb_source(x0)

    def _loss(self, model, x0, x1, cond=None):
        src = self.source_of(x0)
        t = self.time_sampler(x1.shape[0], x1.device)  # (B,)
        x_t, u_t = self.path.sample(src, x1, t)
        loss, info = self._fit(model(x_t, t, cond), u_t, "loss_flow")
        return loss, info, src

    def rollout(self, model, x0, cond=None, start=None):
        """``rollout_k`` Euler steps from ``start`` (the flow start drawn for the loss) or
        from a fresh ``source_of(x0)``; gradients flow through every step."""
        src = self.source_of(x0) if start is None else start
        return solve(lambda x, tt: model(x, tt, cond), src, self.rollout_k, "euler")

    def sample(self, model, x0, cond=None, steps=None, method=None):
        check_steps(steps)
        check_method(self.name, method)
        src = self.source_of(x0)
        return solve(lambda x, t: model(x, t, cond), src, steps or self.default_steps,
                     method or self.default_method)

    def model_calls(self, steps=None, method=None):
        return int(steps or self.default_steps) * CALLS_PER_STEP[method or self.default_method]


class DiffusionObjective(Objective):
    """DDPM / DDIM through diffusers' schedulers (imported lazily).

    The network receives ``t = 1 - k / T`` for diffusion timestep ``k`` so that, as everywhere
    in the toolkit, ``t = 0`` is the pure-noise end and ``t = 1`` the clean target. Training is
    the same for both names (noise prediction at random timesteps, Diffusion Policy's setting);
    the name only picks the default sampler, and ``sample(..., method="ddim")`` runs a
    DDPM-trained model with DDIM's deterministic sampler (and vice versa).
    """

    uses_source = False

    def __init__(self, kind: str = "ddpm", num_train_timesteps: int = 100,
                 beta_schedule: str = "squaredcos_cap_v2", prediction_type: str = "epsilon",
                 clip_sample: bool = False, clip_sample_range: float = 1.0,
                 default_steps: int = 100, default_method: str | None = None):
        try:
            from diffusers import DDIMScheduler, DDPMScheduler
        except ImportError as e:  # pragma: no cover - diffusers is a core dependency
            raise ImportError("the ddpm/ddim objectives need diffusers: pip install diffusers") from e
        if kind not in ("ddpm", "ddim"):
            raise ValueError(f"diffusion kind must be 'ddpm' or 'ddim', got {kind!r}")
        self.name = kind
        kw = dict(num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule,
                  prediction_type=prediction_type, clip_sample=clip_sample, clip_sample_range=clip_sample_range)
        self.schedulers = {"ddpm": DDPMScheduler(**kw), "ddim": DDIMScheduler(**kw)}
        self.scheduler = self.schedulers[kind]  # used for the forward (noising) process
        self.T = num_train_timesteps
        self.prediction_type = prediction_type
        self.default_steps = int(default_steps)
        self.default_method = default_method or kind

    def _t(self, k: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return 1.0 - k.to(like.dtype) / self.T

    def loss(self, model, x0, x1, cond=None, *, return_rollout: bool = False):
        if return_rollout:
            raise ValueError(f"objective {self.name!r} has no differentiable sampler: auxiliary rollout terms "
                             "(policy.decoded_rollout_weight, objective.rollout_weight) must be 0")
        return super().loss(model, x0, x1, cond)

    def _loss(self, model, x0, x1, cond=None):
        noise = torch.randn_like(x1)
        k = torch.randint(0, self.T, (x1.shape[0],), device=x1.device)
        x_k = self.scheduler.add_noise(x1, noise, k)
        pred = model(x_k, self._t(k, x1), cond)
        if self.prediction_type == "epsilon":
            target = noise
        elif self.prediction_type == "sample":
            target = x1
        else:
            target = self.scheduler.get_velocity(x1, noise, k)
        loss = F.mse_loss(pred, target)
        return loss, {"loss_diffusion": loss.detach()}, None

    def sample(self, model, x0, cond=None, steps=None, method=None):
        check_steps(steps)
        check_method(self.name, method)
        steps = int(steps or self.default_steps)
        if steps > self.T:
            raise ValueError(f"{self.name} sampling steps ({steps}) exceed num_train_timesteps ({self.T})")
        scheduler = self.schedulers[method or self.default_method]
        scheduler.set_timesteps(steps, device=x0.device)
        x = torch.randn_like(x0)
        for k in scheduler.timesteps:
            kk = torch.full((x.shape[0],), int(k), device=x.device)
            out = model(x, self._t(kk, x), cond)
            x = scheduler.step(out, k, x).prev_sample
        return x


class RegressionObjective(Objective):
    """One-step regression baseline, MSE to the target.

    ``residual=False``: ``x1_hat = model(0, t=0, cond)`` (the source is not read).
    ``residual=True``: ``x1_hat = x0 + model(x0, t=0, cond)``: the model predicts the change from
    the source. With a network that outputs zeros at initialisation this starts as "copy the
    source", like the one-step a2a flow; it is that flow with the time fixed at 0.
    """

    name = "regression"

    def __init__(self, rollout_weight: float = 0.0, rollout_batch_size: int = 0, residual: bool = False,
                 loss_kind: str = "mse", loss_eps: float = 1e-3):
        self.rollout_weight = float(rollout_weight)
        self.rollout_batch_size = int(rollout_batch_size)
        self.residual = bool(residual)
        self.uses_source = self.residual
        self.loss_kind, self.loss_eps = loss_kind, float(loss_eps)

    def _loss(self, model, x0, x1, cond=None):
        loss, info = self._fit(self.rollout(model, x0, cond), x1, "loss_regression")
        return loss, info, None

    def rollout(self, model, x0, cond=None, start=None):
        """The one call of the sampler (without ``residual``, ``x0`` gives only shape, dtype and device)."""
        t = torch.zeros(x0.shape[0], device=x0.device, dtype=x0.dtype)
        if self.residual:
            return x0 + model(x0, t, cond)
        return model(torch.zeros_like(x0), t, cond)

    def sample(self, model, x0, cond=None, steps=None, method=None):
        check_steps(steps)
        check_method(self.name, method)
        return self.rollout(model, x0, cond)

    def model_calls(self, steps=None, method=None):
        return 1


class MIPObjective(Objective):
    """Two-step regression ("minimal iterative policy", after "Much Ado About Noising").

    Step 1 regresses the target from zeros at ``t = 0``; step 2 refines from
    ``t* x1 + (1 - t*) z`` at ``t = t*`` (training) or from ``t* x1_hat`` (inference).
    """

    name = "mip"
    uses_source = False
    default_steps = 2

    def __init__(self, t_star: float = 0.9, rollout_weight: float = 0.0, rollout_batch_size: int = 0):
        self.t_star = float(t_star)
        self.rollout_weight = float(rollout_weight)
        self.rollout_batch_size = int(rollout_batch_size)

    def _times(self, x):
        b = x.shape[0]
        return (torch.zeros(b, device=x.device, dtype=x.dtype),
                torch.full((b,), self.t_star, device=x.device, dtype=x.dtype))

    def _loss(self, model, x0, x1, cond=None):
        t0, ts = self._times(x1)
        first = model(torch.zeros_like(x1), t0, cond)
        inter = self.t_star * x1 + (1.0 - self.t_star) * torch.randn_like(x1)
        second = model(inter, ts, cond)
        l0, l1 = F.mse_loss(first, x1), F.mse_loss(second, x1)
        return l0 + l1, {"loss_mip_first": l0.detach(), "loss_mip_second": l1.detach()}, None

    def rollout(self, model, x0, cond=None, start=None):
        """The two calls of the sampler, gradients through both."""
        t0, ts = self._times(x0)
        first = model(torch.zeros_like(x0), t0, cond)
        return model(self.t_star * first, ts, cond)

    def sample(self, model, x0, cond=None, steps=None, method=None):
        check_steps(steps)
        check_method(self.name, method)
        return self.rollout(model, x0, cond)

    def model_calls(self, steps=None, method=None):
        return 2


def build_objective(cfg: ObjectiveConfig) -> Objective:
    """Objective named by ``cfg.name``; every comparison changes only this config."""
    steps = cfg.num_inference_steps or DEFAULT_STEPS[cfg.name]
    if cfg.name in ("a2a", "flow"):
        kw = {}
        if cfg.time_sampler == "logit_normal":
            kw = dict(mean=cfg.logit_normal_mean, std=cfg.logit_normal_std)
        elif cfg.time_sampler == "beta":
            kw = dict(a=cfg.beta_a, b=cfg.beta_b)
        return SourceToTargetFlow(
            source="given" if cfg.name == "a2a" else "gaussian",
            path=StraightPath(cfg.start_point_noise, cfg.bridge_sigma),
            time_sampler=SourceMixTime(build_time_sampler(cfg.time_sampler, **kw), cfg.source_time_prob),
            rollout_weight=cfg.rollout_weight, rollout_k=cfg.rollout_k,
            default_steps=steps, default_method=cfg.method, rollout_batch_size=cfg.rollout_batch_size,
            loss_kind=cfg.sample_loss, loss_eps=cfg.sample_loss_eps)
    if cfg.name in ("ddpm", "ddim"):
        return DiffusionObjective(cfg.name, cfg.num_train_timesteps, cfg.beta_schedule,
                                  cfg.prediction_type, cfg.clip_sample, cfg.clip_sample_range,
                                  default_steps=steps, default_method=cfg.method)
    if cfg.name == "regression":
        return RegressionObjective(cfg.rollout_weight, cfg.rollout_batch_size, cfg.regression_residual,
                                   cfg.sample_loss, cfg.sample_loss_eps)
    return MIPObjective(cfg.mip_t_star, cfg.rollout_weight, cfg.rollout_batch_size)
