"""Small shared utilities: package versions for result files, atomic JSON writes, line plots."""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path


def versions() -> dict:
    """Python, platform and the versions of the packages that shape a result."""
    import importlib.metadata as md

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for pkg in ("a2a_temporal", "torch", "mani_skill", "sapien", "gymnasium", "numpy", "diffusers"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


def write_json_atomic(path: str | os.PathLike, data) -> Path:
    """Write ``data`` as JSON to a temporary file beside ``path``, fsync it, then rename it over
    ``path``: a reader (or a crash) never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(json.dumps(data, indent=2, default=str))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def save_line_plot(path: str | os.PathLike, lines: dict, xlabel: str, ylabel: str) -> Path:
    """One PNG of labelled lines: ``lines`` maps a label to ``(xs, ys)`` or ``(xs, ys, style)``,
    ``style`` being matplotlib keyword arguments (default: dots joined by a line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, (xs, ys, *style) in lines.items():
        ax.plot(xs, ys, label=label, **(style[0] if style else {"marker": "o", "ms": 3}))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)
