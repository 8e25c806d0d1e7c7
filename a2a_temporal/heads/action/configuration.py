"""Configuration of the robot-action head."""
from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import Optional

from ...backbone import TransformerConfig
from ...flow import ObjectiveConfig

IMAGE_ENCODERS = ("resnet18_gn", "resnet_small_gn")
IMAGE_POOLS = ("avg", "spatial_softmax")
END_PADDINGS = ("auto", "hold", "repeat")


@dataclass
class PolicyConfig:
    """Everything needed to rebuild an :class:`ActionFlowPolicy` (stored in its config.json).

    Dimensions (``state_dim``, ``qpos_dim``, ``action_dim``, ``image_size``) are filled from the
    dataset by the training tool. Shapes in docstrings: To = n_obs_steps, Th = n_hist,
    H = horizon, A = action_dim, L = latent_tokens, Dz = latent_dim.
    """

    env_id: str = "PushCube-v1"
    obs_mode: str = "state"  # state | rgb
    control_mode: str = "pd_ee_delta_pos"
    state_dim: int = 0
    qpos_dim: int = 0
    action_dim: int = 0
    image_size: int = 0
    camera: str = ""
    # Windows.
    n_obs_steps: int = 2
    n_hist: int = 8  # proprio / previous-action history (the a2a source)
    horizon: int = 16
    n_action_steps: int = 8  # actions executed open loop before re-planning
    # Temporal ensembling (ACT) at inference: None = off; a number m = every chunk stays live over
    # its horizon and the executed action is the exp(-m * i)-weighted mean (i = 0 the oldest) of
    # the live chunks' actions for the step; chunks are still planned every n_action_steps steps.
    temporal_ensemble: Optional[float] = None
    # Source and target representation.
    flow_space: str = "latent"  # latent: flow between learned chunk latents; action: in action space
    latent_tokens: int = 4
    latent_dim: int = 32
    hidden_dim: int = 128  # encoder / decoder MLP width, and the condition token width
    encoder_layers: int = 2  # linear layers of the chunk encoder, decoder and source encoder
    use_prev_actions: bool = True  # previous actions join qpos in the history
    history_in_cond: bool = True  # every objective also sees the history as a condition token
    # The flow's start for objective a2a: history_mlp (A2A: an MLP embedding of the history),
    # legendre (FLASH: Legendre coefficients of the history), last_action_gaussian (Streaming
    # Flow Policy: N(last action, source_noise^2), action space), adaptive_mix (MARS: a learned
    # per-dimension mix of the history embedding and noise). See heads/action/sources.py.
    source: str = "history_mlp"
    source_noise: float = 0.1  # sigma of last_action_gaussian
    legendre_degree: int = 3
    # A2A-Noise: N(0, s^2) on the normalised history *before* the encoders, train and inference
    # (objective.start_point_noise perturbs the encoded flow start instead).
    history_input_noise: float = 0.0
    # Chunks that run past an episode's end: "hold" = zero arm motion and the last gripper
    # command (right for delta controllers), "repeat" = the last action again (right for
    # absolute targets), "auto" = hold for *_delta_* control modes, repeat otherwise.
    end_padding: str = "auto"
    gripper_dims: int = 1  # trailing action dims that are absolute gripper commands (Panda: 1)
    # Stop the flow / consistency gradients at the encoded target, so the chunk encoder learns
    # from the reconstruction loss only (keeps a latent-space Gaussian flow from collapsing it).
    target_stop_grad: bool = False
    # Images (rgb).
    image_encoder: str = "resnet_small_gn"  # resnet18_gn (the paper's) | resnet_small_gn (CPU-sized)
    image_features: int = 256
    # How a frame's feature map becomes a vector: "avg" (global average, keeps what fired, not
    # where) or "spatial_softmax" (image_keypoints expected (x, y) positions, Diffusion Policy's
    # pooling); image_output_stride 16 / 8 dilates the ResNet's last stages for a finer map.
    image_pool: str = "avg"
    image_keypoints: int = 32
    image_output_stride: int = 32
    # Auxiliary loss for rgb policies: each frame's image features predict the position of the
    # scene object image_aux_actor (read from the demos' saved env states, ManiSkill demos only),
    # weight image_aux_weight (0: off). Training only; the policy still sees images + proprio.
    image_aux_weight: float = 0.0
    image_aux_actor: str = "cube"
    image_shift: int = 4  # random-shift augmentation (pixels) during training
    # Photometric augmentation during training (brightness / contrast / saturation factors in
    # [1 - s, 1 + s], per-channel gain in [1 - s/2, 1 + s/2]; encoders.jitter_colours); 0: off.
    image_colour_jitter: float = 0.0
    # Loss weights beside the objective's own loss (A2A recipe: 0.5 / 0.5, with the latent
    # consistency objective.rollout_weight = 1.0 through objective.rollout_k = 6 Euler steps).
    recon_weight: float = 0.5  # L1(Dec(Enc(a)), a), latent space only
    # L1(Dec(rollout(x0)), a) through the objective's own differentiable sampler (a2a / flow:
    # rollout_k Euler steps; regression: 1 call; mip: 2 calls; ddpm / ddim: none, must be 0).
    decoded_rollout_weight: float = 0.5
    # Default: A2A's recipe (consistency MSE through K = 6 Euler steps, weight 1.0, on the first
    # 32 samples of each batch: the paper's batch size).
    objective: ObjectiveConfig = field(
        default_factory=lambda: ObjectiveConfig(rollout_weight=1.0, rollout_k=6, rollout_batch_size=32))
    backbone: TransformerConfig = field(default_factory=lambda: TransformerConfig(preset="small"))
    # Episode seeds of the training demos (filled by the training tool from the dataset's
    # metadata); the evaluator refuses to evaluate on them.
    demo_seeds: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.obs_mode not in ("state", "rgb"):
            raise ValueError(f"policy.obs_mode must be 'state' or 'rgb', got {self.obs_mode!r}")
        if self.flow_space not in ("latent", "action"):
            raise ValueError(f"policy.flow_space must be 'latent' or 'action', got {self.flow_space!r}")
        if not 1 <= self.n_action_steps <= self.horizon:
            raise ValueError(f"policy.n_action_steps={self.n_action_steps} must lie in [1, horizon={self.horizon}]")
        if self.temporal_ensemble is not None and not math.isfinite(self.temporal_ensemble):
            raise ValueError(f"policy.temporal_ensemble={self.temporal_ensemble} must be a finite number or null")
        for name in ("n_obs_steps", "n_hist", "horizon", "latent_tokens", "latent_dim", "hidden_dim",
                     "encoder_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"policy.{name} must be >= 1, got {getattr(self, name)}")
        if self.flow_space == "action" and self.objective.name == "a2a" and not self.use_prev_actions:
            raise ValueError("policy.flow_space=action with objective a2a flows from the previous actions: "
                             "policy.use_prev_actions must be true")
        from .sources import ACTION_SPACE_SOURCES, SOURCES

        if self.source not in SOURCES:
            raise ValueError(f"policy.source={self.source!r} is not one of {list(SOURCES)}")
        if self.source != "history_mlp" and self.objective.name != "a2a":
            raise ValueError(f"policy.source={self.source!r} is a flow start: it needs policy.objective.name=a2a "
                             f"(got {self.objective.name!r})")
        if self.source in ACTION_SPACE_SOURCES and self.flow_space != "action":
            raise ValueError(f"policy.source={self.source} starts from an action: set policy.flow_space=action")
        if self.source_noise < 0 or self.legendre_degree < 0:
            raise ValueError(f"policy.source_noise and policy.legendre_degree must be >= 0, got {self.source_noise}, "
                             f"{self.legendre_degree}")
        if self.flow_space == "action" and self.n_hist < self.horizon and self.objective.name == "a2a" \
                and self.source in ("history_mlp", "adaptive_mix"):
            raise ValueError(f"policy.flow_space=action flows from the last `horizon` actions: "
                             f"policy.n_hist={self.n_hist} must be >= policy.horizon={self.horizon}")
        if self.image_encoder not in IMAGE_ENCODERS:
            raise ValueError(f"policy.image_encoder={self.image_encoder!r} is not one of {list(IMAGE_ENCODERS)}")
        if self.image_pool not in IMAGE_POOLS:
            raise ValueError(f"policy.image_pool={self.image_pool!r} is not one of {list(IMAGE_POOLS)}")
        if self.image_output_stride not in (8, 16, 32):
            raise ValueError(f"policy.image_output_stride must be 8, 16 or 32, got {self.image_output_stride}")
        if self.image_aux_weight < 0:
            raise ValueError(f"policy.image_aux_weight must be >= 0, got {self.image_aux_weight}")
        if not 0 <= self.image_colour_jitter < 1:
            raise ValueError(f"policy.image_colour_jitter must lie in [0, 1), got {self.image_colour_jitter}")
        if self.image_keypoints < 1:
            raise ValueError(f"policy.image_keypoints must be >= 1, got {self.image_keypoints}")
        if self.history_input_noise < 0:
            raise ValueError(f"policy.history_input_noise must be >= 0, got {self.history_input_noise}")
        if self.end_padding not in END_PADDINGS:
            raise ValueError(f"policy.end_padding={self.end_padding!r} is not one of {list(END_PADDINGS)}")
        if self.gripper_dims < 0:
            raise ValueError(f"policy.gripper_dims must be >= 0, got {self.gripper_dims}")
        if self.decoded_rollout_weight < 0 or self.recon_weight < 0:
            raise ValueError(f"policy loss weights must be >= 0, got recon_weight={self.recon_weight}, "
                             f"decoded_rollout_weight={self.decoded_rollout_weight}")
        if self.objective.name in ("ddpm", "ddim") and self.decoded_rollout_weight > 0:
            raise ValueError(f"policy.decoded_rollout_weight={self.decoded_rollout_weight}: objective "
                             f"{self.objective.name} has no differentiable sampler to decode a rollout from; set "
                             "--policy.decoded_rollout_weight=0 (or use a recipe from configs/policy/recipes/)")

    @property
    def uses_image_aux(self) -> bool:
        """Whether training predicts the object position from the image features."""
        return self.obs_mode == "rgb" and self.image_aux_weight > 0

    def resolved_end_padding(self) -> str:
        """``hold`` or ``repeat`` for this config's control mode (see ``end_padding``)."""
        if self.end_padding != "auto":
            return self.end_padding
        return "hold" if "delta" in self.control_mode else "repeat"
