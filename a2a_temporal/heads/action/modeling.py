"""ActionFlowPolicy: the robot-action head on the shared FlowTransformer.

Source (A2A): an embedding of the recent proprioceptive history (joint positions and, by
default, the previously executed actions). Target: the next action chunk, encoded to latent
tokens (or, with ``flow_space=action``, the normalised actions themselves). Condition: per-frame
observation tokens (state vector, or image features + state) and a history token. The objective
(a2a, flow, ddpm, ddim, regression, mip) is chosen by config; the networks stay the same.

Inference in eval mode runs through an :class:`InferencePlan`: the same computation with its
constants folded (normalisation, the layers next to the backbone's input projections, the time
embedding of the sampler's fixed times). It is derived from the weights, never saved, and rebuilt
whenever a weight it folds changes; :meth:`ActionFlowPolicy.predict_action_chunk_reference` keeps
the unfolded path (the training modules called one by one) that it must match.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ...backbone import FlowTransformer
from ...data.normalize import Normalizer
from ...flow import MIPObjective, RegressionObjective, SourceToTargetFlow, build_objective
from ...flow.objective import check_method, check_steps
from ...pretrained import PretrainedMixin, register_model
from ...data.history import ChunkActor
from .configuration import PolicyConfig
from .encoders import ObservationEncoder, TokenMLP, mlp, prepare_images
from .sources import build_source

BATCH_KEYS = ("state", "qpos_hist", "prev_action", "prev_action_is_pad")  # + "image" for rgb policies


@register_model("action_flow_policy")
class ActionFlowPolicy(PretrainedMixin, nn.Module):
    """lerobot-style contract: ``forward(batch) -> (loss, info)``, ``predict_action_chunk``,
    ``select_action`` (with an action queue) and ``reset``."""

    config_class = PolicyConfig

    def __init__(self, config: PolicyConfig):
        super().__init__()
        c = self.config = config
        if min(c.state_dim, c.qpos_dim, c.action_dim) < 1:
            raise ValueError("policy.state_dim, qpos_dim and action_dim must be set (the training tool "
                             "fills them from the dataset)")
        dims = {"state": c.state_dim, "qpos": c.qpos_dim, "action": c.action_dim}
        if c.uses_image_aux:
            dims["aux"] = 3  # the object's position (training only)
        self.normalizer = Normalizer(dims)
        self.objective = build_objective(c.objective)
        hist_dim = c.n_hist * (c.qpos_dim + (c.action_dim if c.use_prev_actions else 0))
        self.obs_encoder = ObservationEncoder(c.state_dim, c.hidden_dim,
                                              c.image_encoder if c.obs_mode == "rgb" else None, c.image_features,
                                              c.image_pool, c.image_keypoints, c.image_output_stride)
        # the image features -> the object's normalised position (auxiliary loss, training only)
        self.aux_head = nn.Linear(c.image_features, 3) if c.uses_image_aux else None
        self.history_token = TokenMLP(hist_dim, c.hidden_dim, 1, c.hidden_dim, layers=2, norm=False) \
            if c.history_in_cond else None
        if c.flow_space == "latent":
            token_dim = c.latent_dim
            self.chunk_encoder = TokenMLP(c.horizon * c.action_dim, c.hidden_dim, c.latent_tokens, c.latent_dim,
                                          layers=c.encoder_layers)
            self.chunk_decoder = mlp(c.latent_tokens * c.latent_dim, c.hidden_dim, c.horizon * c.action_dim,
                                     layers=c.encoder_layers)
            self.source_encoder = TokenMLP(hist_dim, c.hidden_dim, c.latent_tokens, c.latent_dim,
                                           layers=c.encoder_layers) \
                if self.objective.uses_source and c.source == "history_mlp" else None
        else:
            token_dim = c.action_dim
            self.chunk_encoder = self.chunk_decoder = self.source_encoder = None
        self.source_module = None  # the other sources (heads/action/sources.py)
        if self.objective.uses_source and c.source != "history_mlp":
            latent = c.flow_space == "latent"
            self.source_module = build_source(
                c.source, n_hist=c.n_hist, hist_dim=hist_dim // c.n_hist,
                target_shape=(c.latent_tokens, c.latent_dim) if latent else (c.horizon, c.action_dim),
                action_dim=c.action_dim, hidden=c.hidden_dim, layers=c.encoder_layers, latent=latent,
                legendre_degree=c.legendre_degree, source_noise=c.source_noise)
        bb = c.backbone
        bb.in_dim, bb.cond_dim = token_dim, c.hidden_dim
        self.net = FlowTransformer(bb)
        self.actor = ChunkActor(c.n_obs_steps, c.n_hist, c.n_action_steps, c.action_dim, c.temporal_ensemble)

    # ------------------------------------------------------------------ tokenisers
    def _history(self, batch: dict) -> torch.Tensor:
        """Normalised history ``(B, Th, Dq [+ A])``, with A2A-Noise when configured."""
        parts = [self.normalizer.normalize("qpos", batch["qpos_hist"])]
        if self.config.use_prev_actions:
            prev = self.normalizer.normalize("action", batch["prev_action"])
            prev = prev.masked_fill(batch["prev_action_is_pad"][..., None], 0.0)
            parts.append(prev)
        h = torch.cat(parts, dim=-1)
        if self.config.history_input_noise > 0:
            h = h + self.config.history_input_noise * torch.randn_like(h)
        return h

    def _condition(self, batch: dict, history: torch.Tensor, return_image_features: bool = False):
        """Condition tokens ``(B, To [+1], Dc)`` (and the image features ``(B, To, Fi)`` if asked)."""
        state = self.normalizer.normalize("state", batch["state"])
        image = None
        if self.config.obs_mode == "rgb":
            image = prepare_images(batch["image"], self.config.image_shift if self.training else 0,
                                   self.config.image_colour_jitter if self.training else 0.0)
        tokens, feats = self.obs_encoder(state, image, return_image_features=True)
        if self.history_token is not None:
            tokens = torch.cat([tokens, self.history_token(history)], dim=1)
        return (tokens, feats) if return_image_features else tokens

    def _source(self, history: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if not self.objective.uses_source:
            return torch.zeros_like(like)
        if self.source_module is not None:
            return self.source_module(history)  # shaped like the target
        if self.source_encoder is not None:
            return self.source_encoder(history)  # (B, L, Dz)
        A = self.config.action_dim
        return history[:, -self.config.horizon:, -A:]  # (B, H, A): the previous actions

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        if self.chunk_decoder is None:
            return z
        return self.chunk_decoder(z.flatten(1)).view(-1, self.config.horizon, self.config.action_dim)

    # ------------------------------------------------------------------ training
    def forward(self, batch: dict):
        """Training loss on a batch of windows (see data.windows): ``(loss, info)``.

        loss = objective loss (+ objective.rollout_weight * consistency, inside the objective)
             + recon_weight * L1(Dec(Enc(a)), a)                      (latent space)
             + decoded_rollout_weight * L1(Dec(rollout(x0)), a)       (objective's own sampler)
        """
        c = self.config
        actions = self.normalizer.normalize("action", batch["action"])  # (B, H, A)
        history = self._history(batch)  # (B, Th, Dq [+ A])
        cond, feats = self._condition(batch, history, return_image_features=True)  # (B, To [+1], Dc)
        x1 = actions if self.chunk_encoder is None else self.chunk_encoder(actions)  # (B, L, Dz) | (B, H, A)
        x1_flow = x1.detach() if c.target_stop_grad else x1
        x0 = self._source(history, x1)  # same shape as x1
        want_rollout = c.decoded_rollout_weight > 0
        loss, info = self.objective.loss(self.net, x0, x1_flow, cond, return_rollout=want_rollout)
        rollout = info.pop("x1_rollout", None)
        rows = info.pop("rollout_rows", None)
        if self.chunk_decoder is not None and c.recon_weight > 0:
            recon = F.l1_loss(self._decode(x1), actions)
            loss = loss + c.recon_weight * recon
            info["loss_recon"] = recon.detach()
        if rollout is not None and want_rollout:
            dec = F.l1_loss(self._decode(rollout), actions[:rows])
            loss = loss + c.decoded_rollout_weight * dec
            info["loss_decoded_rollout"] = dec.detach()
        if self.aux_head is not None:
            aux = F.mse_loss(self.aux_head(feats), self.normalizer.normalize("aux", batch["aux"]))
            loss = loss + c.image_aux_weight * aux
            info["loss_image_aux"] = aux.detach()
        return loss, info

    # ------------------------------------------------------------------ inference
    @torch.inference_mode()
    def predict_action_chunk(self, batch: dict, num_inference_steps: int | None = None,
                             method: str | None = None) -> torch.Tensor:
        """Raw-unit action chunk ``(B, H, A)`` for a batch of histories (see data.windows).

        ``batch``: ``state (B, To, Ds)``, ``qpos_hist (B, Th, Dq)``, ``prev_action (B, Th, A)``,
        ``prev_action_is_pad (B, Th)`` [, ``image (B, To, H, W, 3)`` uint8], any ``B`` (rows are
        independent: a batch gives the stacked batch-1 results). Other keys are ignored.
        ``num_inference_steps``: sampler steps (None: the objective's default, 1 for a2a);
        ``method``: solver (euler / midpoint / heun) or diffusion sampler (ddpm / ddim).

        In eval mode this runs the folded :class:`InferencePlan` (same outputs as
        :meth:`predict_action_chunk_reference` within float rounding, same random draws); in
        training mode, with ``history_input_noise > 0``, a diffusion objective (ddpm / ddim) or
        a source other than ``history_mlp``, the reference path itself.
        """
        plan = self.inference_plan()
        if plan is None:
            return self.predict_action_chunk_reference(batch, num_inference_steps, method)
        return plan.predict(batch, num_inference_steps, method)

    @torch.inference_mode()
    def predict_action_chunk_reference(self, batch: dict, num_inference_steps: int | None = None,
                                       method: str | None = None) -> torch.Tensor:
        """The unfolded inference path (the training modules one by one): ``(B, H, A)``."""
        if not bool(self.normalizer.fitted):
            raise RuntimeError("the policy's normaliser was never fitted: train it or load a checkpoint")
        dev = self.normalizer.fitted.device
        if dev.type != "cpu":
            batch = {k: v.to(dev, non_blocking=True) for k, v in batch.items()}
        history = self._history(batch)
        cond = self._condition(batch, history)
        B = history.shape[0]
        c = self.config
        shape = (B, c.latent_tokens, c.latent_dim) if self.chunk_encoder is not None else (B, c.horizon, c.action_dim)
        like = torch.zeros(shape, device=dev)
        x0 = self._source(history, like)
        z = self.objective.sample(self.net, x0, cond, steps=num_inference_steps, method=method)
        return self.normalizer.unnormalize("action", self._decode(z))

    def inference_plan(self) -> "InferencePlan | None":
        """The folded inference path for the current weights (built on first use, rebuilt when a
        weight or statistic it folds changes); None where the reference path must run: training
        mode, A2A-Noise on the history (``history_input_noise > 0``), diffusion objectives (their
        samplers amplify rounding), or weights without version counters (created under
        ``torch.inference_mode``). Changes are seen through in-place updates (optimizer, EMA,
        ``copy_``), ``.to()`` and ``load_state_dict``; a parameter *object* swapped by hand on a
        submodule is not: call ``self.__dict__.pop("_plan")`` after such surgery."""
        if self.training or self.config.history_input_noise > 0 or self.source_module is not None:
            return None
        plan = self.__dict__.get("_plan")
        if plan is not None and (plan is False or plan.is_current()):
            return plan or None
        if not bool(self.normalizer.fitted):
            raise RuntimeError("the policy's normaliser was never fitted: train it or load a checkpoint")
        try:
            with torch.inference_mode(False), torch.no_grad():
                plan = InferencePlan(self)
        except _CannotFold:
            plan = False
        self.__dict__["_plan"] = plan
        return plan or None

    def _apply(self, fn, *args, **kwargs):
        self.__dict__.pop("_plan", None)  # .to(), .float(), ...: the folded copies would be stale
        return super()._apply(fn, *args, **kwargs)

    def load_state_dict(self, *args, **kwargs):
        self.__dict__.pop("_plan", None)  # assign=True swaps tensors without touching version counters
        return super().load_state_dict(*args, **kwargs)

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_plan", None)  # derived; deepcopy / pickle rebuild it from their own weights
        return state

    def inference_stages(self, batch: dict, num_inference_steps: int | None = None, method: str | None = None,
                         folded: bool = True) -> dict[str, Callable[[], object]]:
        """Zero-argument callables, one per stage of a ``predict_action_chunk`` call on ``batch``,
        each with its inputs precomputed so it can be timed in isolation (tools/benchmark.py).

        Stages: ``normalisation``, ``observation encoder``, ``history token + source encoder``,
        ``flow step (backbone)`` (condition assembly and the sampler's network calls),
        ``chunk decoder + unnormalisation``. ``folded``: the InferencePlan's stages (there the
        normalisation is folded into the first layers; what remains is masking and
        concatenation) or the reference path's. The rest of a call is dispatch overhead.
        """
        steps, m = num_inference_steps, method
        with torch.inference_mode():
            if folded:
                plan = self.inference_plan()
                if plan is None:
                    raise RuntimeError("no folded inference path for this policy (training mode, "
                                       "history_input_noise > 0 or a diffusion objective)")
                state, qpos, prev, pad, image = plan.prepare(batch)
                u = plan.history_input(qpos, prev, pad)
                obs = plan.observation_tokens(state, image)
                ht, x0 = plan.history_heads(u, prev, pad)
                hc, mean = plan.condition(obs, ht)
                z = plan.sample(x0, hc, mean, steps, m)
                return {"normalisation": lambda: plan.history_input(qpos, prev, pad),
                        "observation encoder": lambda: plan.observation_tokens(state, image),
                        "history token + source encoder": lambda: plan.history_heads(u, prev, pad),
                        "flow step (backbone)": lambda: plan.sample(x0, *plan.condition(obs, ht), steps, m),
                        "chunk decoder + unnormalisation": lambda: plan.decode(z)}
            c, nz = self.config, self.normalizer
            rgb = c.obs_mode == "rgb"
            state = nz.normalize("state", batch["state"])
            hist = self._history(batch)
            like = torch.zeros(hist.shape[0], *(
                (c.latent_tokens, c.latent_dim) if self.chunk_encoder is not None else (c.horizon, c.action_dim)))

            def hist_stage():
                x0 = self._source(hist, like)
                if self.history_token is None:
                    return obs, x0
                return torch.cat([obs, self.history_token(hist)], dim=1), x0

            image = prepare_images(batch["image"]) if rgb else None
            obs = self.obs_encoder(state, image)
            cond, x0 = hist_stage()
            z = self.objective.sample(self.net, x0, cond, steps=steps, method=m)
            return {"normalisation": lambda: (nz.normalize("state", batch["state"]), self._history(batch)),
                    "observation encoder": lambda: self.obs_encoder(state, prepare_images(batch["image"]) if rgb
                                                                    else None),
                    "history token + source encoder": hist_stage,
                    "flow step (backbone)": lambda: self.objective.sample(self.net, x0, cond, steps=steps, method=m),
                    "chunk decoder + unnormalisation": lambda: nz.unnormalize("action", self._decode(z))}

    def reset(self) -> None:
        """Forget the histories and queued actions (call at every episode start)."""
        self.actor.reset()

    @torch.inference_mode()
    def select_action(self, frame: dict, num_inference_steps: int | None = None) -> np.ndarray:
        """One action ``(A,)`` for one observation frame (``state``, ``qpos`` [, ``image``]).

        Plans a chunk when the queue is empty, then serves ``n_action_steps`` actions from it
        (with ``config.temporal_ensemble``: plans every ``n_action_steps`` steps and serves the
        weighted mean of the live chunks).
        """
        self.actor.observe(frame)
        if self.actor.needs_plan():
            self.actor.plan(self.predict_action_chunk(self.actor.batch(), num_inference_steps)[0].cpu().numpy())
        return self.actor.act()


# ---------------------------------------------------------------------------- folded inference
class _CannotFold(Exception):
    """The policy's layers or weights do not allow the folded path (the reference path runs)."""


def _f64(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to("cpu", torch.float64)


def _mlp_layers(seq: nn.Sequential) -> list[list]:
    """``[[W, b], ...]`` (float64 CPU copies) of an ``encoders.mlp``: Linear, Mish, ..., Linear."""
    mods = list(seq)
    for i, m in enumerate(mods):
        if not isinstance(m, nn.Linear if i % 2 == 0 else nn.Mish) or (i % 2 == 0 and m.bias is None):
            raise _CannotFold(f"unexpected layer {type(m).__name__} in an encoder MLP")
    return [[_f64(m.weight), _f64(m.bias)] for m in mods[::2]]


def _run_mlp(x: torch.Tensor, layers: list[tuple]) -> torch.Tensor:
    """Linear layers with Mish between them (``layers``: ``(W, b | None)``)."""
    for i, (w, b) in enumerate(layers):
        if i:
            x = F.mish(x)
        x = F.linear(x, w, b)
    return x


class InferencePlan(nn.Module):
    """A policy's eval-mode inference with its constants folded (derived tensors, never saved).

    Folded in float64 then cast to the weights' dtype:

    * the state / qpos / previous-action normalisation into the first layer that reads them (the
      padding mask of the previous actions becomes ``Th`` extra input features that carry the
      offset term back, so masking stays exact);
    * the image projection into the first observation layer (rgb);
    * the last observation and history-token layers into the backbone's ``cond_in``, with
      ``cond_in``'s bias, ``cond_type`` and the position table as one per-token bias ``(M, W)``;
    * the first layers of the history token and the source encoder (same input) into one;
    * ``x_in``'s bias and the x positions into one per-token bias ``(N, W)``;
    * the time embedding of every fixed sampler time (and ``cond_pool``'s bias), cached per time;
    * the action unnormalisation into the chunk decoder's last layer.

    The backbone's blocks run unchanged (:meth:`FlowTransformer.trunk`). Random draws (flow's
    Gaussian source, start-point noise) are the objective's own calls, in the same
    order as the reference path, so seeded calls agree too.
    """

    def __init__(self, policy: ActionFlowPolicy):
        super().__init__()
        c, net, nz = policy.config, policy.net, policy.normalizer
        if policy.config.history_input_noise > 0:
            raise _CannotFold("history_input_noise > 0")
        if not isinstance(policy.objective, (SourceToTargetFlow, RegressionObjective, MIPObjective)):
            # DDPM / DDIM turn a one-ulp change of any weight into ~1e-3 of action (measured):
            # they keep the reference path, bit for bit.
            raise _CannotFold(f"objective {policy.objective.name!r} keeps the reference path")
        self.config, self.objective, self.net = c, policy.objective, net
        weight = net.x_in.weight
        self.dtype, self.device = weight.dtype, weight.device
        self.on_cpu = self.device.type == "cpu"
        self.rgb = c.obs_mode == "rgb"
        width = net.config.width
        cast = lambda t: None if t is None else t.to(self.device, self.dtype).contiguous()  # noqa: E731
        w_cond, b_cond = _f64(net.cond_in.weight), _f64(net.cond_in.bias)
        pos, ctype = _f64(net.pos), _f64(net.cond_type)
        To = c.n_obs_steps

        # Observation tokens: normalisation (and image projection) in, cond_in out.
        enc = policy.obs_encoder
        obs = _mlp_layers(enc.net)
        w, b = obs[0]
        ds = c.state_dim
        w_state = w[:, :ds] / _f64(nz.state_scale)
        b = b - w_state @ _f64(nz.state_offset)
        if enc.image is not None:
            b = b + w[:, ds:] @ _f64(enc.image_proj.bias)
            w_state = torch.cat([w_state, w[:, ds:] @ _f64(enc.image_proj.weight)], 1)
        obs[0] = [w_state, b]
        w, b = obs[-1]
        obs[-1] = [w_cond @ w, None]
        cond_bias = [(w_cond @ b + b_cond + ctype)[None] + pos[:To]]  # (To, W)
        self.obs_layers = [(cast(w), cast(b)) for w, b in obs]
        self.image_net = enc.image  # run as is (rgb); its projection is folded above

        # History heads: the history token (-> cond_in) and the source encoder (-> flow start).
        heads = []
        if policy.history_token is not None:
            tok = _mlp_layers(policy.history_token.net)
            w, b = tok[-1]
            tok[-1] = [w_cond @ w, None]
            cond_bias.append((w_cond @ b + b_cond + ctype + pos[To])[None])  # (1, W)
            heads.append(tok)
        self.has_token = policy.history_token is not None
        src_enc = policy.source_encoder
        if src_enc is not None:
            heads.append(_mlp_layers(src_enc.net))
            self.src_shape, self.src_norm = (src_enc.tokens, src_enc.dim), src_enc.norm
        self.has_source_encoder = src_enc is not None
        for layers in heads:
            layers[0] = list(self._fold_history(*layers[0], nz))
        self.fused = len(heads) == 2 and all(len(h) > 1 for h in heads)
        if self.fused:  # one matmul for both first layers (same input), then split
            (w1, b1), (w2, b2) = heads[0][0], heads[1][0]
            self.first = (cast(torch.cat([w1, w2])), cast(torch.cat([b1, b2])))
            self.split = (w1.shape[0], w2.shape[0])
            heads = [h[1:] for h in heads]
        self.heads = [[(cast(w), cast(b)) for w, b in h] for h in heads]
        self.cond_bias = cast(torch.cat(cond_bias))  # (M, W)

        # x tokens, time, pooling.
        self.x_shape = (c.latent_tokens, c.latent_dim) if c.flow_space == "latent" else (c.horizon, c.action_dim)
        n = self.x_shape[0]
        self.x_weight = cast(_f64(net.x_in.weight))
        self.x_bias = cast(_f64(net.x_in.bias)[None] + pos[:n])  # (N, W)
        self.pool = net.cond_pool is not None
        if self.pool:
            self.pool_weight, self.pool_bias = cast(_f64(net.cond_pool.weight)), cast(_f64(net.cond_pool.bias))
        self.width = width
        self._time_bias: dict[float, torch.Tensor] = {}

        # Decoder with the unnormalisation folded into its last layer.
        H, A = c.horizon, c.action_dim
        self.action_scale, self.action_offset = cast(_f64(nz.action_scale)), cast(_f64(nz.action_offset))
        if policy.chunk_decoder is not None:
            dec = _mlp_layers(policy.chunk_decoder)
            w, b = dec[-1]
            s, o = _f64(nz.action_scale).repeat(H), _f64(nz.action_offset).repeat(H)
            dec[-1] = [w * s[:, None], b * s + o]
            self.decoder = [(cast(w), cast(b)) for w, b in dec]
        else:
            self.decoder = None

        # Everything folded above: a change to any of these (version counter) rebuilds the plan.
        mods = [nz, enc.net, net.x_in, net.cond_in, net.time] + [m for m in (
            getattr(enc, "image_proj", None), policy.history_token, src_enc, policy.chunk_decoder, net.cond_pool)
            if m is not None]
        self._sources = [t for m in mods for t in (*m.parameters(), *m.buffers())] + [net.cond_type, net.pos]
        try:
            self._versions = [t._version for t in self._sources]
        except RuntimeError as e:  # inference tensors have no version counter
            raise _CannotFold(str(e)) from None

    def _fold_history(self, w: torch.Tensor, b: torch.Tensor, nz: Normalizer):
        """First layer on the normalised, masked, flattened history ``(Th, Dq [+ A])`` -> the same
        layer on ``[qpos (Th*Dq), masked prev actions (Th*A), pad (Th)]`` in raw units."""
        c = self.config
        th, dq = c.n_hist, c.qpos_dim
        a = c.action_dim if c.use_prev_actions else 0
        w3 = w.view(w.shape[0], th, dq + a)
        wq = w3[:, :, :dq] / _f64(nz.qpos_scale)  # (out, Th, Dq)
        b = b - (wq * _f64(nz.qpos_offset)).sum((1, 2))
        cols = [wq.reshape(w.shape[0], th * dq)]
        if a:
            wa = w3[:, :, dq:] / _f64(nz.action_scale)  # (out, Th, A)
            off = (wa * _f64(nz.action_offset)).sum(2)  # (out, Th): offset term of each history step
            b = b - off.sum(1)
            cols += [wa.reshape(w.shape[0], th * a), off]  # a padded step adds its offset term back
        return torch.cat(cols, 1), b

    def is_current(self) -> bool:
        """False once a folded weight, buffer or statistic has been modified in place."""
        try:
            return [t._version for t in self._sources] == self._versions
        except RuntimeError:
            return False

    # -------------------------------------------------------------- stages
    def prepare(self, batch: dict) -> tuple:
        """``(state, qpos_hist, prev_action, prev_action_is_pad, image | None)`` tensors on the
        plan's device (numpy arrays are accepted too)."""
        out = []
        for k in BATCH_KEYS + (("image",) if self.rgb else ()):
            v = batch[k]
            if not isinstance(v, torch.Tensor):
                v = torch.as_tensor(np.asarray(v))
            if not self.on_cpu:
                v = v.to(self.device, non_blocking=True)
            out.append(v)
        return (*out, None) if not self.rgb else tuple(out)

    def history_input(self, qpos: torch.Tensor, prev: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        """``[qpos (Th*Dq), masked prev actions (Th*A), pad (Th)]`` ``(B, Th*(Dq+A+1))``: what the
        folded first history layer reads (the normalisation itself is folded into it)."""
        if not self.config.use_prev_actions:
            return qpos.flatten(1)
        return torch.cat([qpos.flatten(1), prev.masked_fill(pad[..., None], 0.0).flatten(1),
                          pad.to(prev.dtype)], 1)

    def observation_tokens(self, state: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        """Observation tokens already projected to the backbone width (no bias yet): ``(B, To, W)``."""
        x = state
        if self.image_net is not None:
            B, To = state.shape[:2]
            feats = self.image_net(prepare_images(image).flatten(0, 1))  # (B*To, F)
            x = torch.cat([state, feats.view(B, To, -1)], -1)
        return _run_mlp(x, self.obs_layers)

    def history_heads(self, u: torch.Tensor, prev: torch.Tensor, pad: torch.Tensor):
        """``(history token (B, W) | None, flow source (B, L, Dz) | (B, H, A) | None)``."""
        if self.fused:
            ys = F.mish(F.linear(u, *self.first)).split(self.split, 1)
            outs = [_run_mlp(y, h) for y, h in zip(ys, self.heads)]  # Mish already applied
        else:
            outs = [_run_mlp(u, h) for h in self.heads]
        token = outs.pop(0) if self.has_token else None
        x0 = None
        if self.has_source_encoder:
            x0 = outs.pop(0).view(-1, *self.src_shape)
            if self.src_norm:
                x0 = F.layer_norm(x0, (self.src_shape[1],))
        elif self.objective.uses_source:  # action space: the last H previous actions, normalised
            H = self.config.horizon
            x0 = ((prev[:, -H:] - self.action_offset) / self.action_scale).masked_fill(pad[:, -H:, None], 0.0)
        return token, x0

    def condition(self, obs: torch.Tensor, token: torch.Tensor | None):
        """Condition tokens ``(B, M, W)`` (embedded, with positions) and their mean ``(B, W)``."""
        hc = (torch.cat([obs, token[:, None]], 1) if token is not None else obs) + self.cond_bias
        return hc, hc.mean(1) if self.pool else None

    def time_bias(self, t: float) -> torch.Tensor:
        """``time(t) [+ cond_pool.bias]`` ``(W,)`` for a fixed sampler time, cached."""
        v = self._time_bias.get(t)
        if v is None:
            with torch.inference_mode(False), torch.no_grad():
                v = self.net.time(torch.full((1,), t, dtype=self.dtype, device=self.device))[0]
                if self.pool:
                    v = self.pool_bias + v
            v = self._time_bias[t] = v.detach()
        return v

    def velocity(self, x: torch.Tensor, t: float, hc: torch.Tensor, mean: torch.Tensor | None) -> torch.Tensor:
        """The backbone at a fixed time ``t``: ``x (B, N, D)`` -> ``(B, N, D)``."""
        h = torch.cat([F.linear(x, self.x_weight) + self.x_bias, hc], 1)  # (B, N + M, W)
        if self.pool:
            c = F.linear(mean, self.pool_weight, self.time_bias(t))
        else:
            c = self.time_bias(t).expand(x.shape[0], -1)
        return self.net.trunk(h, c, x.shape[1])

    def sample(self, x0: torch.Tensor | None, hc: torch.Tensor, mean: torch.Tensor | None,
               steps: int | None = None, method: str | None = None) -> torch.Tensor:
        """The objective's sampler from ``x0`` (None: zeros) -> ``(B, N, D)``."""
        obj = self.objective
        if x0 is None:
            x0 = torch.zeros((hc.shape[0], *self.x_shape), dtype=self.dtype, device=self.device)
        v = lambda x, t: self.velocity(x, t, hc, mean)  # noqa: E731
        if isinstance(obj, SourceToTargetFlow):
            check_steps(steps)
            check_method(obj.name, method)
            return _solve(v, obj.source_of(x0), int(steps or obj.default_steps), method or obj.default_method)
        if isinstance(obj, (RegressionObjective, MIPObjective)):
            check_steps(steps)
            check_method(obj.name, method)
            first = v(torch.zeros_like(x0), 0.0)
            return first if isinstance(obj, RegressionObjective) else v(obj.t_star * first, obj.t_star)
        raise ValueError(f"objective {obj.name!r} has no folded sampler")

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Flow end point -> raw-unit actions ``(B, H, A)``."""
        c = self.config
        if self.decoder is None:
            return z * self.action_scale + self.action_offset
        return _run_mlp(z.flatten(1), self.decoder).view(-1, c.horizon, c.action_dim)

    def run(self, state, qpos_hist, prev_action, prev_action_is_pad, image=None, steps=None, method=None):
        """The whole call on tensors: ``(B, H, A)``."""
        u = self.history_input(qpos_hist, prev_action, prev_action_is_pad)
        obs = self.observation_tokens(state, image)
        token, x0 = self.history_heads(u, prev_action, prev_action_is_pad)
        hc, mean = self.condition(obs, token)
        return self.decode(self.sample(x0, hc, mean, steps, method))

    def predict(self, batch: dict, steps: int | None = None, method: str | None = None) -> torch.Tensor:
        return self.run(*self.prepare(batch), steps=steps, method=method)

    # -------------------------------------------------------------- export
    def deterministic_reason(self) -> str | None:
        """None when a call is a pure function of its inputs; else why not (one line)."""
        obj, name = self.objective, self.objective.name
        if isinstance(obj, SourceToTargetFlow):
            if not obj.uses_source:
                return f"objective {name!r} starts from Gaussian noise"
            if obj.path.start_point_noise > 0:
                return f"objective.start_point_noise={obj.path.start_point_noise} draws noise at inference"
            return None
        if isinstance(obj, (RegressionObjective, MIPObjective)):
            return None
        return f"objective {name!r} samples with noise"

    def bind(self, steps: int | None = None, method: str | None = None) -> nn.Module:
        """A module ``(state, qpos_hist, prev_action, prev_action_is_pad[, image]) -> actions``
        with the sampler settings fixed (for ONNX export and torch.compile); deterministic
        samplers only."""
        why = self.deterministic_reason()
        if why is not None:
            raise ValueError(f"cannot bind a deterministic call: {why}")
        return _BoundPlan(self, steps, method)


def _solve(v, x: torch.Tensor, steps: int, method: str) -> torch.Tensor:
    """flow.solvers.solve on the grid 0 -> 1 with float times (so time embeddings are cached)."""
    if method not in ("euler", "midpoint", "heun"):
        raise ValueError(f"unknown solver method {method!r}; expected one of ['euler', 'midpoint', 'heun']")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"solver steps must be a positive integer, got {steps!r}")
    h = (1.0 - 0.0) / steps
    for i in range(int(steps)):
        t = 0.0 + i * h
        if method == "euler":
            x = x + v(x, t) if h == 1.0 else x + h * v(x, t)  # 1.0 * v is v: same bits, one op less
        elif method == "midpoint":
            x_mid = x + 0.5 * h * v(x, t)
            x = x + h * v(x_mid, t + 0.5 * h)
        else:
            k1 = v(x, t)
            k2 = v(x + h * k1, t + h)
            x = x + 0.5 * h * (k1 + k2)
    return x


class _BoundPlan(nn.Module):
    """``InferencePlan.run`` with fixed sampler settings, as a module with tensor inputs only."""

    def __init__(self, plan: InferencePlan, steps: int | None, method: str | None):
        super().__init__()
        self.plan, self.steps, self.method = plan, steps, method
        # Fill the time-embedding cache now, outside any trace or compilation.
        hc = torch.zeros(1, plan.cond_bias.shape[0], plan.width, dtype=plan.dtype, device=plan.device)
        x0 = torch.zeros(1, *plan.x_shape, dtype=plan.dtype, device=plan.device)
        with torch.inference_mode(False), torch.no_grad():
            plan.sample(x0, hc, hc.mean(1) if plan.pool else None, steps, method)

    def forward(self, state, qpos_hist, prev_action, prev_action_is_pad, image=None):
        return self.plan.run(state, qpos_hist, prev_action, prev_action_is_pad, image, self.steps, self.method)
