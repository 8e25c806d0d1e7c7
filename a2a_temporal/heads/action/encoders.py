"""Encoders of the action head: observations (condition), history (source), chunks (target)."""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp(inp: int, hidden: int, out: int, layers: int = 2) -> nn.Sequential:
    mods, d = [], inp
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden), nn.Mish()]
        d = hidden
    mods.append(nn.Linear(d, out))
    return nn.Sequential(*mods)


class TokenMLP(nn.Module):
    """Flattened input ``(B, ...)`` -> ``(B, L, D)`` tokens, optionally LayerNorm-ed (no affine)."""

    def __init__(self, inp: int, hidden: int, tokens: int, dim: int, layers: int = 3, norm: bool = True):
        super().__init__()
        self.tokens, self.dim = tokens, dim
        self.net = mlp(inp, hidden, tokens * dim, layers)
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x.flatten(1)).view(-1, self.tokens, self.dim)  # (B, L, D)
        return F.layer_norm(z, (self.dim,)) if self.norm else z


def group_norm(channels: int, **kwargs) -> nn.GroupNorm:
    """GroupNorm in place of BatchNorm (16 channels per group), as A2A's image encoder."""
    return nn.GroupNorm(max(1, channels // 16), channels, **kwargs)


def build_image_backbone(name: str, output_stride: int = 32, feature_map: bool = False) -> tuple[nn.Module, int]:
    """A timm ResNet with GroupNorm, built with ``pretrained=False`` (nothing is downloaded).

    ``feature_map=True`` leaves out the global pooling, so the net returns its ``(N, C, h, w)``
    map; ``output_stride`` 16 or 8 dilates the last stages instead of striding (a 64 px frame
    gives a 4 x 4 or 8 x 8 map rather than 2 x 2)."""
    try:
        import timm
        from timm.models.resnet import BasicBlock, ResNet
    except ImportError as e:  # pragma: no cover - timm is a core dependency
        raise ImportError("rgb policies need timm: pip install timm") from e
    if name == "resnet18_gn":
        net = timm.create_model("resnet18", pretrained=False, num_classes=0, norm_layer=group_norm,
                                output_stride=output_stride, global_pool="" if feature_map else "avg")
    elif name == "resnet_small_gn":  # ResNet-10 with quarter width: CPU-sized
        net = ResNet(BasicBlock, layers=(1, 1, 1, 1), channels=(16, 32, 64, 128), num_classes=0,
                     stem_width=16, norm_layer=group_norm, output_stride=output_stride,
                     global_pool="" if feature_map else "avg")
    else:
        raise ValueError(f"unknown image encoder {name!r}")
    return net, net.num_features


class SpatialSoftmax(nn.Module):
    """Feature map ``(N, C, h, w)`` -> ``(N, 2K)`` keypoints: a 1x1 conv to K maps, a softmax over
    the positions of each (learned temperature), and the expected (x, y) in [-1, 1].

    Diffusion Policy pools its ResNet this way (after robomimic) rather than averaging, which
    throws away *where* a feature fired: the position of the object is the thing to imitate."""

    def __init__(self, channels: int, keypoints: int):
        super().__init__()
        self.to_maps = nn.Conv2d(channels, keypoints, kernel_size=1)
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, fmap: torch.Tensor) -> torch.Tensor:
        maps = self.to_maps(fmap)  # (N, K, h, w)
        N, K, h, w = maps.shape
        ys = torch.linspace(-1.0, 1.0, h, device=maps.device, dtype=maps.dtype)
        xs = torch.linspace(-1.0, 1.0, w, device=maps.device, dtype=maps.dtype)
        grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")  # (h, w) each
        attn = torch.softmax(maps.flatten(2) / self.log_temperature.exp(), dim=-1)  # (N, K, h*w)
        x = (attn * grid_x.flatten()).sum(-1)  # (N, K)
        y = (attn * grid_y.flatten()).sum(-1)
        return torch.cat([x, y], dim=-1)  # (N, 2K)


class ObservationEncoder(nn.Module):
    """Per-frame condition tokens: state MLP, or image features + state. ``(B, To, ...) -> (B, To, Dc)``.

    ``image_pool``: "avg" (the ResNet's global average) or "spatial_softmax" (``image_keypoints``
    expected positions on a map of ``image_output_stride``)."""

    def __init__(self, state_dim: int, out_dim: int, image_encoder: str | None = None, image_features: int = 256,
                 image_pool: str = "avg", image_keypoints: int = 32, image_output_stride: int = 32):
        super().__init__()
        self.image = None
        inp = state_dim
        if image_encoder is not None:
            keypoints = image_pool == "spatial_softmax"
            net, feat = build_image_backbone(image_encoder, image_output_stride, feature_map=keypoints)
            if keypoints:
                net = nn.Sequential(net, SpatialSoftmax(feat, image_keypoints))
                feat = 2 * image_keypoints
            self.image = net
            self.image_proj = nn.Linear(feat, image_features)
            inp += image_features
        self.net = mlp(inp, out_dim, out_dim, layers=2)

    def forward(self, state: torch.Tensor, image: torch.Tensor | None = None, return_image_features: bool = False):
        """``(B, To, Dc)`` tokens; with ``return_image_features`` also the projected image
        features ``(B, To, Fi)`` (None without images)."""
        B, To = state.shape[:2]
        parts, feats = [state], None  # (B, To, Ds), normalised
        if self.image is not None:
            feats = self.image_proj(self.image(image.flatten(0, 1))).view(B, To, -1)  # (B, To, Fi)
            parts.append(feats)
        tokens = self.net(torch.cat(parts, dim=-1))  # (B, To, Dc)
        return (tokens, feats) if return_image_features else tokens


def jitter_colours(x: torch.Tensor, strength: float) -> torch.Tensor:
    """Photometric augmentation of float frames ``(B, To, 3, H, W)`` in [0, 1]: brightness,
    contrast and saturation factors drawn in [1 - s, 1 + s] and a per-channel gain in
    [1 - s/2, 1 + s/2] (a white-balance shift), one draw per sample shared by its frames, so the
    motion between a sample's frames is not a colour change. The factors act as torchvision's
    ``adjust_brightness`` / ``adjust_contrast`` / ``adjust_saturation`` do (contrast and saturation
    blend with the frame's grey mean / grey image), vectorised over the batch; clamped to [0, 1]."""
    B = x.shape[0]

    def draw(*shape, s=strength):
        return 1.0 + s * (2 * torch.rand(B, 1, *shape, device=x.device, dtype=x.dtype) - 1)

    def grey(y):
        return (0.299 * y[:, :, 0:1] + 0.587 * y[:, :, 1:2] + 0.114 * y[:, :, 2:3])

    x = (x * draw(1, 1, 1)).clamp(0, 1)  # brightness
    m = grey(x).mean(dim=(2, 3, 4), keepdim=True)
    x = ((x - m) * draw(1, 1, 1) + m).clamp(0, 1)  # contrast
    g = grey(x)
    x = ((x - g) * draw(1, 1, 1) + g).clamp(0, 1)  # saturation
    return (x * draw(3, 1, 1, s=strength / 2)).clamp(0, 1)  # per-channel gain


def prepare_images(image: torch.Tensor, shift: int = 0, colour_jitter: float = 0.0) -> torch.Tensor:
    """uint8 ``(B, To, H, W, 3)`` -> float ``(B, To, 3, H, W)`` in [-1, 1]; training augmentations:
    a random shift of up to ``shift`` pixels and :func:`jitter_colours` of strength
    ``colour_jitter`` (0: off)."""
    x = image.permute(0, 1, 4, 2, 3).float()
    if colour_jitter > 0:  # training only: inference keeps the single rescale below
        x = jitter_colours(x.div(255.0), colour_jitter).mul(255.0)
    x = x.div(127.5).sub(1.0)
    if shift > 0:
        B, To, C, H, W = x.shape
        flat = F.pad(x.flatten(0, 1), (shift,) * 4, mode="replicate")
        # One random offset per sample, shared across its frames.
        ox = torch.randint(0, 2 * shift + 1, (B,), device=x.device).repeat_interleave(To)
        oy = torch.randint(0, 2 * shift + 1, (B,), device=x.device).repeat_interleave(To)
        rows = (oy[:, None] + torch.arange(H, device=x.device)[None])  # (B*To, H)
        cols = (ox[:, None] + torch.arange(W, device=x.device)[None])  # (B*To, W)
        n = torch.arange(flat.shape[0], device=x.device)[:, None, None]
        flat = flat.permute(0, 2, 3, 1)[n, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
        x = flat.reshape(B, To, C, H, W)
    return x
