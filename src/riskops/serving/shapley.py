"""Exact path-dependent Shapley values of one leaf, for given satisfied-feature patterns.

For a leaf of value ``v`` whose root path has ``d`` unique features with zero fractions ``z_j``
(cover share when the feature is unknown) and one fractions ``o_j`` (1 when the row satisfies
every split on that feature, else 0), TreeSHAP's contribution of path feature ``s`` is

    phi_s = v (o_s - z_s) sum_{S in P\\{s}} w(|S|) prod_{j in S} o_j prod_{j in P\\S\\{s}} z_j,
    w(k) = k! (d - k - 1)! / d!

The Shapley weight is a Beta integral, so the sum is the integral over t in [0, 1] of
``prod_{j != s} (z_j + (o_j - z_j) t)``: a polynomial of degree d - 1, which Gauss-Legendre
quadrature with ``d // 2 + 1`` nodes integrates exactly. Leave-one-out products come from prefix
and suffix products, so nothing is divided (a zero cover cannot produce a NaN).
"""

from __future__ import annotations

import numpy as np


def _quadrature(d: int) -> tuple[np.ndarray, np.ndarray]:
    nodes, weights = np.polynomial.legendre.leggauss(d // 2 + 1)
    return (nodes + 1.0) / 2.0, weights / 2.0


def leaf_shapley(value: np.ndarray, zero: np.ndarray, one: np.ndarray) -> np.ndarray:
    """Contributions of each path feature, for leaves sharing one unique-path length ``d``.

    Args:
        value: leaf values, shape ``(L,)``.
        zero: zero fractions, shape ``(L, d)``.
        one: one fractions (0 or 1), shape ``(L, P, d)``: ``P`` patterns per leaf.

    Returns:
        ``phi`` of shape ``(L, P, d)``.
    """
    d = zero.shape[1]
    t, w = _quadrature(d)
    delta = one - zero[:, None, :]  # (L, P, d)
    # factor[j] = z_j + (o_j - z_j) t, feature-major so each step below is one contiguous slab.
    factor = zero.T[:, :, None, None] + np.moveaxis(delta, 2, 0)[..., None] * t  # (d, L, P, Q)
    others = np.empty_like(factor)  # product over j != s, from prefix and suffix products
    running = np.ones_like(factor[0])
    for s in range(d):
        others[s] = running
        running = running * factor[s]
    running = np.ones_like(factor[0])
    for s in range(d - 1, -1, -1):
        others[s] *= running
        running = running * factor[s]
    integral = np.moveaxis(others @ w, 0, 2)  # (L, P, d)
    return value[:, None, None] * delta * integral


def all_patterns(d: int) -> np.ndarray:
    """Every one-fraction pattern of ``d`` features: row ``p`` has bit ``s`` of ``p`` at ``s``."""
    p = np.arange(2**d, dtype=np.int64)
    return ((p[:, None] >> np.arange(d)) & 1).astype(np.float64)
