"""Robot-action head: ActionFlowPolicy (A2A and every baseline objective on one backbone)."""
from .actor import ChunkActor
from .configuration import PolicyConfig
from .modeling import ActionFlowPolicy

__all__ = ["ActionFlowPolicy", "ChunkActor", "PolicyConfig"]
