"""Evaluation curves read back from a training run's ``metrics.jsonl``."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import DataError

# What a curve can be drawn against: the iteration, or the training time the trainer records with
# every evaluation (wall seconds and process CPU seconds, evaluation excluded).
X_AXES = {"step": "training iteration", "train_time_s": "training wall time (s)",
          "train_cpu_s": "training process CPU time (s)"}


def read_curve(run: Path, metric: str, baseline: str | None, x: str = "step") -> list[dict]:
    """Every evaluation in ``run/metrics.jsonl`` as ``{"step", "value", and the training times
    recorded with it}`` (value minus the baseline when one is named), in step order; a step logged
    twice (a resumed run) keeps its last record. With ``x`` other than ``"step"`` (one of
    ``X_AXES``) every evaluation must carry that time."""
    if x not in X_AXES:
        raise DataError(f"x axis {x!r}: expected one of {', '.join(X_AXES)}")
    path = run / "metrics.jsonl"
    if not path.is_file():
        raise DataError(f"{path}: not found (a training run directory holds metrics.jsonl)")
    points: dict[int, dict] = {}
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
        if x not in rec:
            raise DataError(f"{path}:{i}: has {metric} but not {x} (evaluations record the training time "
                            "since this version; plot older runs against the step)")
        value = float(rec[metric]) - (float(rec[baseline]) if baseline else 0.0)
        points[int(rec["step"])] = {"step": int(rec["step"]), "value": value,
                                    **{k: float(rec[k]) for k in X_AXES if k != "step" and k in rec}}
    if not points:
        raise DataError(f"{path}: no record has {metric!r} (was the run trained with periodic evaluation, "
                        "train.eval_every > 0?)")
    return [points[s] for s in sorted(points)]


def first_reaching(points: list[dict], target: float) -> dict | None:
    """The first point whose value is at least ``target`` (None if the curve never gets there)."""
    return next((p for p in points if p["value"] >= target), None)
