"""Entry-point helper shared by every tool: one-line errors and non-zero exits."""
from __future__ import annotations

import functools
import sys

from .errors import A2AError


def run_tool(name: str, args) -> None:
    """Run ``tools/<name>`` in a child process (demos compose tools this way, never by import).

    The child's stderr (progress bars included) passes through as it comes; its tail is kept so
    that a failure raises :class:`A2AError` with the tool's last error line."""
    import subprocess
    from pathlib import Path

    tool = Path(__file__).resolve().parents[1] / "tools" / name
    proc = subprocess.Popen([sys.executable, str(tool), *map(str, args)], stderr=subprocess.PIPE)
    tail = b""
    out = getattr(sys.stderr, "buffer", None)
    while True:
        chunk = proc.stderr.read1(4096) if hasattr(proc.stderr, "read1") else proc.stderr.read(4096)
        if not chunk:
            break
        tail = (tail + chunk)[-8000:]
        if out is not None:
            out.write(chunk)
            out.flush()
        else:
            sys.stderr.write(chunk.decode(errors="replace"))
    code = proc.wait()
    if code != 0:
        text = tail.decode(errors="replace").replace("\r", "\n")
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        raise A2AError(f"tools/{name} failed (exit {code}): {lines[-1] if lines else 'no message'}")


def parse_named_spec(spec: str, flag: str, with_steps: bool = True) -> tuple[str, str, int | None]:
    """``NAME=PATH[:STEPS]`` -> ``(name, path, steps)``; malformed values are one-line ConfigErrors."""
    from .errors import ConfigError

    form = "NAME=PATH:STEPS" if with_steps else "NAME=PATH"
    if "=" not in spec:
        raise ConfigError(f"{flag} {spec!r}: expected {form}")
    name, rest = spec.split("=", 1)
    if not name or not rest:
        raise ConfigError(f"{flag} {spec!r}: expected {form} with a non-empty name and path")
    if not with_steps:
        return name, rest, None
    path, sep, steps = rest.rpartition(":")
    if not sep or not path:
        raise ConfigError(f"{flag} {spec!r}: expected {form} (missing ':STEPS')")
    try:
        n = int(steps)
    except ValueError:
        raise ConfigError(f"{flag} {spec!r}: STEPS must be a positive integer, got {steps!r}") from None
    if n < 1:
        raise ConfigError(f"{flag} {spec!r}: STEPS must be a positive integer, got {n}")
    return name, path, n


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
