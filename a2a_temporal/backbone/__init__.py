"""The shared transformer backbone (torch and einops only)."""
from .transformer import PRESETS, FlowTransformer, TransformerConfig

__all__ = ["PRESETS", "FlowTransformer", "TransformerConfig"]
