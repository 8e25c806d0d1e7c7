"""Episode-seed ranges of the evaluation protocol.

A ManiSkill episode's initial scene is a function of its reset seed, so seeds decide what a
policy has seen. Three disjoint ranges keep training, model selection and reporting apart:

=============  ===========================  ============================================
range          seeds                        used by
=============  ===========================  ============================================
demos          ``[0, 500_000)``             ``tools/generate_demos.py`` (planner, from 0)
validation     ``[500_000, 1_000_000)``     in-training evaluation; selects ``best``
test           ``[1_000_000, ...)``         ``tools/eval_policy.py`` (the reported numbers)
=============  ===========================  ============================================

The evaluator also refuses any seed that is one of the policy's own training-demo seeds
(recorded in its config), whatever range it lies in.
"""
from __future__ import annotations

DEMO_SEED_START = 0
VALIDATION_SEED_START = 500_000
TEST_SEED_START = 1_000_000

SPLITS = {"demos": (DEMO_SEED_START, VALIDATION_SEED_START),
          "validation": (VALIDATION_SEED_START, TEST_SEED_START),
          "test": (TEST_SEED_START, None)}


def split_of(seed: int) -> str:
    """Name of the range ``seed`` lies in."""
    for name, (lo, hi) in SPLITS.items():
        if seed >= lo and (hi is None or seed < hi):
            return name
    return "negative"


def seed_range(start: int, episodes: int) -> list[int]:
    return [start + i for i in range(episodes)]


def check_within(split: str, start: int, episodes: int, what: str) -> None:
    """Raise ValueError unless seeds ``start .. start+episodes-1`` all lie in ``split``."""
    lo, hi = SPLITS[split]
    end = start + episodes - 1
    if start < lo or (hi is not None and end >= hi):
        span = f"[{lo}, {hi})" if hi is not None else f">= {lo}"
        raise ValueError(f"{what}: seeds {start}..{end} leave the {split} range {span}")
