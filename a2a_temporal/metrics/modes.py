"""How many answers do the demos give to one input? Nearest-neighbour statistics of a demo set.

A policy that returns one action chunk per input (A2A from a deterministic history, a regression
head) can at best return the mean of the chunks the demos pair with that input. Where those chunks
form one cloud, the mean is a good chunk; where they form two clouds (two ways around an obstacle,
two joint-space paths to the same pose) the mean lies between them and may be no demo's chunk.

For query windows, the ``k`` nearest windows *of other episodes* in input space form the
neighbourhood; on their action chunks:

* ``residual``: the mean squared distance of the chunks to a local linear fit (the neighbourhood
  mean plus a least-squares fit on the first ``rank`` principal components of the neighbours'
  inputs), so that chunks that differ only because their inputs differ do not count. Over the
  chunks' total variance it estimates the share of the chunk variance the input does not explain,
  the least error (relative) of any one-answer predictor on these inputs (roughly: the fit is
  local and linear).
* ``split`` and ``p``: the same residuals in the chunks' first ``d`` principal components (of the
  whole data set); each neighbourhood is whitened by its own covariance and split in two by
  2-means; ``split`` is
  the share of the whitened scatter the split explains. Whitening makes the statistic blind to the
  neighbourhood's covariance, so its distribution for a Gaussian cloud depends on ``k``, ``d`` and
  ``rank`` only, and ``p`` compares it with that distribution (simulated once). For one-cloud
  neighbourhoods about 5 % of the queries have p < 0.05; two clouds give small p far more often.
"""
from __future__ import annotations

import numpy as np
import torch


def _two_centroids(w: torch.Tensor, assign: torch.Tensor):
    """Centroids and sizes of the two groups of each point set ``w (..., k, d)`` under a boolean
    ``assign (..., k)``: ``(c1, c0, n1, n0)`` with ``n`` shaped ``(..., 1)`` (an empty group's centroid is 0)."""
    w1 = assign.to(w.dtype)
    n1 = w1.sum(-1, keepdim=True)
    n0 = w.shape[-2] - n1
    c1 = (w1[..., None] * w).sum(-2) / n1.clamp_min(1)
    c0 = ((1 - w1)[..., None] * w).sum(-2) / n0.clamp_min(1)
    return c1, c0, n1, n0


def whitened_split(x: torch.Tensor, iters: int = 10, ridge: float = 1e-6) -> torch.Tensor:
    """Share of the whitened scatter of each point set ``(..., k, d)`` that the best 2-means split
    explains (best of ``d`` starts: the signs of the projections on each principal direction of the
    set before whitening). Needs ``k > d``. Returns ``(...)`` values in [0, 1]."""
    k, d = x.shape[-2], x.shape[-1]
    if k <= d:
        raise ValueError(f"whitened_split needs more points than dimensions (k={k}, d={d})")
    xc = x - x.mean(-2, keepdim=True)
    cov = xc.transpose(-1, -2) @ xc / (k - 1)
    scale = torch.diagonal(cov, dim1=-2, dim2=-1).mean(-1).clamp_min(1e-30)
    eye = torch.eye(d, dtype=x.dtype)
    chol = torch.linalg.cholesky(cov + (ridge * scale)[..., None, None] * eye)
    w = torch.linalg.solve_triangular(chol, xc.transpose(-1, -2), upper=False).transpose(-1, -2)  # (..., k, d)
    total = w.pow(2).sum((-2, -1))
    _, _, vh = torch.linalg.svd(xc, full_matrices=False)
    best = torch.zeros(x.shape[:-2], dtype=x.dtype)
    for j in range(d):
        assign = (xc @ vh[..., j, :, None]).squeeze(-1) > 0  # (..., k)
        for _ in range(iters):
            c1, c0, n1, n0 = _two_centroids(w, assign)
            d1 = (w - c1[..., None, :]).pow(2).sum(-1)
            d0 = (w - c0[..., None, :]).pow(2).sum(-1)
            new = torch.where(n1 > 0, d1 < d0, torch.zeros_like(assign))
            assign = torch.where(n0 > 0, new, torch.ones_like(assign))
        c1, c0, n1, n0 = _two_centroids(w, assign)
        between = n1[..., 0] * c1.pow(2).sum(-1) + n0[..., 0] * c0.pow(2).sum(-1)  # w is centred
        best = torch.maximum(best, between / total.clamp_min(1e-30))
    return best


def local_linear_residuals(feats: torch.Tensor, y: torch.Tensor, rank: int) -> torch.Tensor:
    """``y (..., k, D)`` less its mean and its least-squares fit on the first ``rank`` principal
    components of the neighbourhood's inputs ``feats (..., k, F)``: what a one-answer predictor that
    is locally linear in the input cannot explain."""
    yc = y - y.mean(-2, keepdim=True)
    if rank == 0:
        return yc
    fc = feats - feats.mean(-2, keepdim=True)
    u, _, _ = torch.linalg.svd(fc, full_matrices=False)
    u = u[..., :rank]  # (..., k, rank), orthonormal, orthogonal to the constant
    return yc - u @ (u.transpose(-1, -2) @ yc)


def gaussian_split_null(k: int, d: int, draws: int, seed: int = 0, rank: int = 0) -> np.ndarray:
    """Sorted ``whitened_split`` values of ``draws`` sets of ``k`` standard Gaussian points in ``d``
    dimensions (after the same local linear fit on ``rank`` random inputs): the statistic's
    distribution for any one-cloud Gaussian neighbourhood."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for s in range(0, draws, 1000):
        n = min(1000, draws - s)
        eps = torch.randn((n, k, d), generator=gen, dtype=torch.float64)
        feats = torch.randn((n, k, max(rank, 1)), generator=gen, dtype=torch.float64)
        out.append(whitened_split(local_linear_residuals(feats, eps, rank)))
    return np.sort(torch.cat(out).numpy())


def neighbourhoods(features: np.ndarray, groups: np.ndarray, queries: np.ndarray, k: int,
                   chunk: int = 256) -> np.ndarray:
    """Indices ``(len(queries), k)`` of each query's ``k`` nearest rows of ``features`` (Euclidean)
    among the rows of other ``groups`` (episodes)."""
    f = torch.as_tensor(features, dtype=torch.float32)
    g = torch.as_tensor(groups)
    out = []
    for s in range(0, len(queries), chunk):
        q = torch.as_tensor(queries[s:s + chunk])
        dist = torch.cdist(f[q], f)  # (c, N)
        dist[g[q][:, None] == g[None, :]] = float("inf")
        out.append(dist.topk(k, largest=False).indices.numpy())
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.int64)


def mode_statistics(features: np.ndarray, targets: np.ndarray, groups: np.ndarray, queries: np.ndarray,
                    k: int = 64, dims: int = 3, rank: int = 8, null_draws: int = 4000, seed: int = 0,
                    chunk: int = 256) -> dict:
    """Per query: ``residual``, ``split`` and ``p`` (see the module text); plus ``total_var`` (the
    targets' variance summed over dimensions) and ``pca_share`` (variance share of the ``dims``
    components).

    ``features``: ``(N, F)`` inputs, already scaled; ``targets``: ``(N, D)`` flattened chunks;
    ``groups``: ``(N,)`` episode ids; ``queries``: row indices to evaluate."""
    if dims < 1 or rank < 0 or k <= dims + rank + 2:
        raise ValueError(f"k={k}, dims={dims}, rank={rank}: need dims >= 1, rank >= 0 and more than "
                         "dims + rank + 2 neighbours")
    if len(np.unique(groups)) < 2:
        raise ValueError("mode statistics need windows of at least two episodes")
    y = torch.as_tensor(targets, dtype=torch.float64)
    if dims > y.shape[1]:
        raise ValueError(f"dims={dims} exceeds the target dimension {y.shape[1]}")
    yc = y - y.mean(0)
    _, s, vh = torch.linalg.svd(yc, full_matrices=False)
    z = yc @ vh[:dims].T  # (N, dims)
    pca_share = float(s[:dims].pow(2).sum() / s.pow(2).sum().clamp_min(1e-30))
    nb = neighbourhoods(features, groups, queries, k)
    null = gaussian_split_null(k, dims, null_draws, seed, rank)
    f = torch.as_tensor(features, dtype=torch.float64)
    residual, split = [], []
    for st in range(0, len(queries), chunk):
        idx = torch.as_tensor(nb[st:st + chunk])
        r = local_linear_residuals(f[idx], y[idx], rank)
        residual.append(r.pow(2).sum(-1).mean(-1))
        split.append(whitened_split(local_linear_residuals(f[idx], z[idx], rank)))
    split = torch.cat(split).numpy()
    p = (len(null) - np.searchsorted(null, split, side="left") + 1) / (len(null) + 1)
    return {"residual": torch.cat(residual).numpy(), "split": split, "p": p,
            "total_var": float(y.var(0).sum()), "pca_share": pca_share}
