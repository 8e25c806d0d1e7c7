"""Small statistics for reporting rates."""
from __future__ import annotations

import math


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval of a binomial rate (95 % for the default ``z``); ``(nan, nan)`` if n = 0."""
    if n <= 0:
        return (math.nan, math.nan)
    if not 0 <= successes <= n:
        raise ValueError(f"successes={successes} must lie in [0, n={n}]")
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def fisher_exact(k1: int, n1: int, k2: int, n2: int) -> float:
    """Two-sided Fisher exact test of two binomial rates, k1 of n1 against k2 of n2: the probability,
    with the margins fixed, of a table at most as likely as the observed one (the same rule as
    ``scipy.stats.fisher_exact``). Exact integer arithmetic, no dependency."""
    for k, n in ((k1, n1), (k2, n2)):
        if n <= 0 or not 0 <= k <= n:
            raise ValueError(f"successes={k} must lie in [0, n={n}] with n > 0")
    total, succ = n1 + n2, k1 + k2
    lo, hi = max(0, succ - n2), min(succ, n1)
    weight = {a: math.comb(n1, a) * math.comb(n2, succ - a) for a in range(lo, hi + 1)}
    observed = weight[k1]
    # tables exactly as likely as the observed one count too (integer weights: no tolerance needed)
    tail = sum(w for w in weight.values() if w <= observed)
    return min(1.0, tail / math.comb(total, succ))
