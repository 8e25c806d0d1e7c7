"""ActionFlowPolicy: the robot-action head on the shared FlowTransformer.

Source (A2A): an embedding of the recent proprioceptive history (joint positions and, by
default, the previously executed actions). Target: the next action chunk, encoded to latent
tokens (or, with ``flow_space=action``, the normalised actions themselves). Condition: per-frame
observation tokens (state vector, or image features + state) and a history token. The objective
(a2a, flow, ddpm, ddim, regression, mip) is chosen by config; the networks stay the same.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ...backbone import FlowTransformer
from ...data.normalize import Normalizer
from ...flow import build_objective
from ...pretrained import PretrainedMixin, register_model
from ...data.history import ChunkActor
from .configuration import PolicyConfig
from .encoders import ObservationEncoder, TokenMLP, mlp, prepare_images


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
        self.normalizer = Normalizer({"state": c.state_dim, "qpos": c.qpos_dim, "action": c.action_dim})
        self.objective = build_objective(c.objective)
        hist_dim = c.n_hist * (c.qpos_dim + (c.action_dim if c.use_prev_actions else 0))
        self.obs_encoder = ObservationEncoder(c.state_dim, c.hidden_dim,
                                              c.image_encoder if c.obs_mode == "rgb" else None, c.image_features)
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
                if self.objective.uses_source else None
        else:
            token_dim = c.action_dim
            self.chunk_encoder = self.chunk_decoder = self.source_encoder = None
        bb = c.backbone
        bb.in_dim, bb.cond_dim = token_dim, c.hidden_dim
        self.net = FlowTransformer(bb)
        self.actor = ChunkActor(c.n_obs_steps, c.n_hist, c.n_action_steps, c.action_dim)

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

    def _condition(self, batch: dict, history: torch.Tensor) -> torch.Tensor:
        """Condition tokens ``(B, To [+1], Dc)``."""
        state = self.normalizer.normalize("state", batch["state"])
        image = None
        if self.config.obs_mode == "rgb":
            image = prepare_images(batch["image"], self.config.image_shift if self.training else 0)
        tokens = self.obs_encoder(state, image)
        if self.history_token is not None:
            tokens = torch.cat([tokens, self.history_token(history)], dim=1)
        return tokens

    def _source(self, history: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        if not self.objective.uses_source:
            return torch.zeros_like(like)
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
        cond = self._condition(batch, history)  # (B, To [+1], Dc)
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
        return loss, info

    # ------------------------------------------------------------------ inference
    @torch.inference_mode()
    def predict_action_chunk(self, batch: dict, num_inference_steps: int | None = None,
                             method: str | None = None) -> torch.Tensor:
        """Raw-unit action chunk ``(B, H, A)`` for a batch of histories (see data.windows).

        ``num_inference_steps``: sampler steps (None: the objective's default, 1 for a2a);
        ``method``: solver (euler / midpoint / heun) or diffusion sampler (ddpm / ddim).
        """
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

    def reset(self) -> None:
        """Forget the histories and queued actions (call at every episode start)."""
        self.actor.reset()

    @torch.inference_mode()
    def select_action(self, frame: dict, num_inference_steps: int | None = None) -> np.ndarray:
        """One action ``(A,)`` for one observation frame (``state``, ``qpos`` [, ``image``]).

        Plans a chunk when the queue is empty, then serves ``n_action_steps`` actions from it.
        """
        self.actor.observe(frame)
        if self.actor.needs_plan():
            self.actor.plan(self.predict_action_chunk(self.actor.batch(), num_inference_steps)[0].cpu().numpy())
        return self.actor.act()
