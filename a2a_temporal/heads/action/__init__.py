"""Robot-action head: ActionFlowPolicy (A2A and every baseline objective on one backbone)."""
from ...data.history import ChunkActor
from .configuration import PolicyConfig
from .modeling import ActionFlowPolicy

__all__ = ["ActionFlowPolicy", "ChunkActor", "PolicyConfig"]
