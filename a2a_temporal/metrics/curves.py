"""Evaluation curves read back from a training run's ``metrics.jsonl``."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataError


def read_curve(run: Path, metric: str, baseline: str | None) -> list[tuple[int, float]]:
    """``(step, value)`` of every evaluation in ``run/metrics.jsonl`` (value minus the baseline
    when one is named); a step logged twice (a resumed run) keeps its last record."""
    path = run / "metrics.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: not found (a training run directory holds metrics.jsonl)")
    points: dict[int, float] = {}
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            raise DataError(f"{path}:{i}: not a JSON line") from None
        if metric not in rec:
            continue
        if baseline is not None and baseline not in rec:
            raise DataError(f"{path}:{i}: has {metric} but not the baseline {baseline}")
        points[int(rec["step"])] = float(rec[metric]) - (float(rec[baseline]) if baseline else 0.0)
    if not points:
        raise DataError(f"{path}: no record has {metric!r} (was the run trained with periodic evaluation, "
                        "train.eval_every > 0?)")
    return sorted(points.items())
