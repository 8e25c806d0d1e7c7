"""Entry-point helper shared by every tool: one-line errors and non-zero exits."""
from __future__ import annotations

import functools
import sys

from .errors import A2AError


def run_cli(main):
    """Decorator for tool ``main`` functions.

    ``A2AError`` (bad config, data, checkpoint) prints ``error: <message>`` and exits 2;
    Ctrl-C exits 130 (work written so far stays valid: every writer is atomic).
    """
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except A2AError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)
    return wrapper
