"""LatentVideoFlow: next-frame prediction on the shared FlowTransformer.

The same idea as the policy, on video: the next frame's latent is reached by flowing from the
previous frame's latent, in one step. A frozen VAE (kept inside the checkpoint) maps frames to
latents and back; the FlowTransformer sees latent patches as tokens.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from einops import rearrange

from ...backbone import FlowTransformer
from ...errors import DataError
from ...flow import build_objective
from ...pretrained import PretrainedMixin, register_model
from .configuration import VideoFlowConfig
from .vae import VideoVAE, frames_to_tensor, tensor_to_frames


@register_model("latent_video_flow")
class LatentVideoFlow(PretrainedMixin, nn.Module):
    """``forward(batch) -> (loss, info)`` on latents; ``predict_next`` / ``rollout`` on frames.

    Training batches (latents already scaled by the VAE's factor)::

        context (B, K, C, h, w)   target (B, C, h, w)   action (B, Da)  (when use_actions)
    """

    config_class = VideoFlowConfig

    def __init__(self, config: VideoFlowConfig):
        super().__init__()
        c = self.config = config
        if c.use_actions and c.action_dim < 1:
            raise ValueError("video.use_actions needs video.action_dim (filled from the data's .actions.npy)")
        self.vae = VideoVAE(c.vae).requires_grad_(False).eval()
        D, n = c.token_dim, c.num_patches
        self.objective = build_objective(c.objective)
        self.frame_embed = nn.Parameter(torch.zeros(c.context, 1, D))
        self.patch_embed = nn.Parameter(torch.zeros(1, n, D))
        nn.init.normal_(self.frame_embed, std=0.02)
        nn.init.normal_(self.patch_embed, std=0.02)
        self.action_proj = nn.Linear(c.action_dim, D) if c.use_actions else None
        bb = c.backbone
        bb.in_dim = bb.cond_dim = D
        self.net = FlowTransformer(bb)

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()  # always frozen
        return self

    # ------------------------------------------------------------------ tokens
    def tokens(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, C, h, w)`` -> ``(B, n, C p^2)``."""
        p = self.config.patch
        return rearrange(z, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=p, p2=p)

    def untokens(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, n, C p^2)`` -> ``(B, C, h, w)``."""
        C, h, w = self.config.vae.latent_shape
        p = self.config.patch
        return rearrange(x, "b (h w) (c p1 p2) -> b c (h p1) (w p2)", h=h // p, p1=p, p2=p, c=C)

    def condition(self, context: torch.Tensor, action: torch.Tensor | None) -> torch.Tensor:
        """``(B, K, C, h, w)`` [+ ``(B, Da)``] -> condition tokens ``(B, K n [+1], D)``."""
        B, K = context.shape[:2]
        tok = self.tokens(context.flatten(0, 1)).view(B, K, -1, self.config.token_dim)  # (B, K, n, D)
        tok = tok + self.frame_embed[None] + self.patch_embed[:, None]  # (B, K, n, D)
        tok = tok.flatten(1, 2)  # (B, K n, D)
        if self.action_proj is not None:
            if action is None:
                raise ValueError("this model is action-conditioned: pass the actions between frames")
            tok = torch.cat([tok, self.action_proj(action)[:, None]], dim=1)  # (B, K n + 1, D)
        return tok

    # ------------------------------------------------------------------ training
    def forward(self, batch: dict):
        context, target = batch["context"], batch["target"]
        cond = self.condition(context, batch.get("action"))
        x0 = self.tokens(context[:, -1])  # the previous frame's latent: the a2a source
        x1 = self.tokens(target)
        return self.objective.loss(self.net, x0, x1, cond)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict_latent(self, context: torch.Tensor, action: torch.Tensor | None = None, steps: int | None = None,
                       method: str | None = None) -> torch.Tensor:
        """Latent context ``(B, K, C, h, w)`` -> next latent ``(B, C, h, w)``."""
        cond = self.condition(context, action)
        x0 = self.tokens(context[:, -1])
        return self.untokens(self.objective.sample(self.net, x0, cond, steps=steps, method=method))

    def _prepare(self, frames, source: str) -> torch.Tensor:
        frames = torch.as_tensor(frames)
        if frames.ndim == 4:
            frames = frames[None]
        if frames.ndim != 5 or frames.dtype != torch.uint8:
            raise DataError(f"{source}: expected uint8 frames (B, K, H, W, 3), got {tuple(frames.shape)} {frames.dtype}")
        B, K = frames.shape[:2]
        if K < self.config.context:  # edge-pad a short context, as in training
            frames = torch.cat([frames[:, :1].expand(B, self.config.context - K, *frames.shape[2:]), frames], dim=1)
        return frames[:, -self.config.context:]

    def encode_frames(self, frames: torch.Tensor, source: str = "frames") -> torch.Tensor:
        """uint8 ``(B, K, H, W, 3)`` -> latents ``(B, K, C, h, w)``."""
        B, K = frames.shape[:2]
        return self.vae.encode(frames.flatten(0, 1), source).view(B, K, *self.config.vae.latent_shape)

    def residual_base(self, z_last: torch.Tensor, last_frame: torch.Tensor) -> torch.Tensor | None:
        """``last frame - D(z_last)`` as a float image, what residual decoding adds ``D(z_next)`` to.

        Computed once per rollout (the last context frame does not change while rolling out);
        ``None`` under ``decode_mode=direct``."""
        if self.config.decode_mode == "direct":
            return None
        return frames_to_tensor(last_frame.to(self.vae.device)) - self.vae.decode_float(z_last)

    def decode_latents(self, z: torch.Tensor, base: torch.Tensor | None) -> torch.Tensor:
        """Latents ``(B, [n,] C, h, w)`` -> uint8 frames ``(B, [n,] H, W, 3)``, decoded in one batch;
        ``base`` ``(B, 3, H, W)`` from :meth:`residual_base` (shared by the ``n`` frames of a rollout),
        or None for direct decoding."""
        lead = z.shape[:-3]
        x = self.vae.decode_float(z.reshape(-1, *z.shape[-3:]))
        x = x.view(*lead, *x.shape[1:])
        if base is not None:
            x = x + base.view(base.shape[0], *[1] * (len(lead) - 1), *base.shape[1:])
        return tensor_to_frames(x.reshape(-1, *x.shape[-3:])).view(*lead, *x.shape[-2:], 3)

    def _to_frames(self, z_pred: torch.Tensor, z_last: torch.Tensor, last_frame: torch.Tensor) -> torch.Tensor:
        return self.decode_latents(z_pred, self.residual_base(z_last, last_frame))

    @torch.no_grad()
    def predict_next(self, frames, action=None, steps: int | None = None, method: str | None = None,
                     source: str = "frames") -> torch.Tensor:
        """uint8 ``(B, K, H, W, 3)`` (or ``(K, H, W, 3)``) -> next frame uint8 ``(B, H, W, 3)``."""
        return self.rollout(frames, 1, None if action is None else torch.as_tensor(action)[..., None, :],
                            steps, method, source)[:, 0]

    def _actions(self, actions, n: int, device) -> torch.Tensor | None:
        if self.action_proj is None:
            return None
        if actions is None:
            raise ValueError("this model is action-conditioned: pass the actions between frames")
        actions = torch.as_tensor(actions, dtype=torch.float32, device=device)
        if actions.ndim == 2:
            actions = actions[None]
        if actions.shape[1] < n:
            raise ValueError(f"need {n} actions for {n} predicted frames, got {actions.shape[1]}")
        return actions

    @torch.no_grad()
    def rollout_latents(self, context: torch.Tensor, n: int, actions=None, steps: int | None = None,
                        method: str | None = None) -> torch.Tensor:
        """Latent-only rollout: latent context ``(B, K, C, h, w)`` -> ``n`` next latents
        ``(B, n, C, h, w)``, autoregressively, without touching the VAE."""
        actions = self._actions(actions, n, context.device)
        ctx, out = context, []
        for i in range(n):
            z = self.predict_latent(ctx, None if actions is None else actions[:, i], steps, method)
            out.append(z)
            ctx = torch.cat([ctx[:, 1:], z[:, None]], dim=1)
        return torch.stack(out, dim=1)

    @torch.no_grad()
    def rollout(self, frames, n: int, actions=None, steps: int | None = None, method: str | None = None,
                source: str = "frames") -> torch.Tensor:
        """Predict ``n`` frames autoregressively: ``(B, K, H, W, 3)`` -> ``(B, n, H, W, 3)``.

        ``actions`` ``(B, n, Da)``: the action leading into each predicted frame. The rollout runs
        in latent space (:meth:`rollout_latents`); the VAE encodes the context once and decodes the
        ``n`` predicted latents once, in one batch, at the end.
        """
        frames = self._prepare(frames, source).to(self.vae.device)
        ctx = self.encode_frames(frames, source)  # (B, K, C, h, w)
        z = self.rollout_latents(ctx, n, actions, steps, method)  # (B, n, C, h, w)
        return self.decode_latents(z, self.residual_base(ctx[:, -1], frames[:, -1]))
