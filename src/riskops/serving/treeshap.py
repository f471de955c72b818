"""Exact TreeSHAP for LightGBM boosters, fast enough for per-request reason codes.

Fast TreeSHAP v2 style: at load time, for every leaf and every pattern of which of its unique
path features the row satisfies, the leaf's contribution to each of those features is tabulated
(:mod:`riskops.serving.shapley`). Explaining a row then takes every split decision at once, turns
them into one pattern per leaf, looks the contributions up and adds them per feature: a few
vectorised numpy passes, no recursion. Leaves whose table would pass the memory cap are computed
exactly per request instead (same formula, evaluated on the row's pattern only).

The contributions equal ``booster.predict(X, pred_contrib=True)`` (same covers, same split
semantics as LightGBM's ``Tree::Decision``), last column the bias (sum of the trees' expected
values), and each row sums to ``booster.predict(X, raw_score=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from riskops.serving.forest import MISSING_NAN, MISSING_ZERO, Forest, read_forest
from riskops.serving.shapley import all_patterns, leaf_shapley

ZERO_THRESHOLD = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float literal)
_MAX_BITS = 52  # patterns are bit masks summed exactly in float64
_CHUNK_ELEMENTS = 1 << 21  # bound on per-chunk temporaries (elements) for batches


class TreeShap:
    """Exact TreeSHAP contributions of a LightGBM booster, precomputed per leaf pattern."""

    def __init__(self, forest: Forest, max_table_mb: float = 256.0) -> None:
        self._forest_name = forest.model
        self._names = list(forest.feature_names)
        self._f = forest.num_features
        self._bias = forest.expected_value
        self._constant = forest.constant
        self._decisions(forest)
        self._paths(forest)
        self._tables(forest, max_table_mb)

    @classmethod
    def from_booster(cls, booster: Any, *, max_table_mb: float = 256.0) -> TreeShap:
        """Precompute the explainer of ``booster`` (a ``lightgbm.Booster``).

        Args:
            booster: a binary or regression booster with constant leaves.
            max_table_mb: memory for the leaf tables; leaves beyond it are computed per request.
        """
        if max_table_mb < 0:
            raise ValueError(f"max_table_mb must be >= 0, got {max_table_mb}")
        return cls(read_forest(booster), max_table_mb=max_table_mb)

    @property
    def feature_names(self) -> list[str]:
        """The booster's feature names, in column order of ``X`` and of the contributions."""
        return list(self._names)

    @property
    def table_bytes(self) -> int:
        """Memory held by the precomputed contribution tables."""
        return int(self._table.nbytes)

    @property
    def fallback_leaves(self) -> int:
        """Number of leaves computed per request because their table passed the memory cap."""
        return sum(len(group.leaves) for group in self._untabled)

    @property
    def expected_value(self) -> float:
        """The bias column: sum over trees of the cover-weighted mean leaf value."""
        return self._bias

    # ---- load time -------------------------------------------------------------------------

    def _decisions(self, forest: Forest) -> None:
        feature = np.asarray(forest.node_feature, dtype=np.intp)
        threshold = np.asarray(forest.node_threshold, dtype=np.float64)
        missing = np.asarray(forest.node_missing, dtype=np.int8)
        default_left = np.asarray(forest.node_default_left, dtype=bool)
        categorical = np.array([c is not None for c in forest.node_categories], dtype=bool)
        numeric = ~categorical
        self._node_feature = feature
        self._threshold = np.where(numeric, threshold, 0.0)
        zero_goes = np.where(missing == MISSING_ZERO, default_left, self._threshold >= 0.0)
        # NaN is read as 0.0 unless the split's missing type is NaN (NumericalDecision).
        self._nan_left = np.where(missing == MISSING_NAN, default_left, zero_goes) & numeric
        self._zero_left = zero_goes & numeric
        self._has_zero_missing = bool(np.any((missing == MISSING_ZERO) & numeric))
        self._cat_nodes = np.flatnonzero(categorical)
        self._cat_feature = feature[self._cat_nodes]
        cats = [forest.node_categories[i] for i in self._cat_nodes]
        width = max((max(c, default=-1) for c in cats), default=-1) + 2  # last column: never in
        lookup = np.zeros((len(cats), width), dtype=bool)
        for row, values in enumerate(cats):
            lookup[row, values] = True
        self._cat_width = width
        self._cat_lookup = lookup.ravel()
        self._cat_offset = np.arange(len(cats), dtype=np.intp) * width

    def _paths(self, forest: Forest) -> None:
        leaves, nodes = forest.leaves, len(forest.node_feature)
        # A row fails a path edge when it goes the other way: columns [0, nodes) of the failure
        # vector are "went right at node n" (fails a left edge), [nodes, 2 nodes) "went left".
        # A slot with several splits (a repeated feature) fails when any of them fails: those get
        # a column of their own, 2 nodes + k, set from the count of failed splits (matrix B).
        rows, cols, bits, multi_rows, multi_cols = [], [], [], [], []
        for i, leaf in enumerate(leaves):
            if len(leaf.features) > _MAX_BITS:
                raise ValueError(
                    f"{forest.model}: a leaf of tree {leaf.tree} has {len(leaf.features)} "
                    f"unique features on its path; at most {_MAX_BITS} are supported"
                )
            edges: dict[int, list[int]] = {}
            for n, left, s in leaf.path:
                edges.setdefault(s, []).append(n if left else nodes + n)
            for s, columns in edges.items():
                if len(columns) == 1:
                    column = columns[0]
                else:
                    column = 2 * nodes + len(set(multi_rows))
                    multi_rows += [column - 2 * nodes] * len(columns)
                    multi_cols += columns
                rows.append(i)
                cols.append(column)
                bits.append(float(1 << s))
        k = len(set(multi_rows))
        self._edges = 2 * nodes
        self._multi = sparse.csr_array(
            (np.ones(len(multi_rows)), (multi_rows, multi_cols)), shape=(k, 2 * nodes)
        )
        self._slot_bits = sparse.csr_array((bits, (rows, cols)), shape=(len(leaves), 2 * nodes + k))
        self._full = np.array([(1 << len(leaf.features)) - 1 for leaf in leaves], dtype=np.int64)
        self._leaf_value = np.array([leaf.value for leaf in leaves], dtype=np.float64)

    def _tables(self, forest: Forest, max_table_mb: float) -> None:
        leaves = forest.leaves
        sizes = [len(leaf.features) * 8 << len(leaf.features) for leaf in leaves]
        budget, used, tabled = max_table_mb * 2**20, 0, []
        for i in sorted(range(len(leaves)), key=lambda i: sizes[i]):
            if used + sizes[i] > budget:
                break
            used += sizes[i]
            tabled.append(i)
        tabled.sort()
        # Per leaf, pattern-major: the d contributions of one pattern share a cache line.
        dims = np.array([len(leaves[i].features) for i in tabled], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(dims << dims)]).astype(np.int64)
        table = np.zeros(int(offsets[-1]), dtype=np.float64)
        by_d: dict[int, list[int]] = {}
        for pos, i in enumerate(tabled):
            by_d.setdefault(len(leaves[i].features), []).append(pos)
        for d, members in by_d.items():
            patterns = all_patterns(d)
            step = max(1, _CHUNK_ELEMENTS // (len(patterns) * d * (d // 2 + 1)))
            for k in range(0, len(members), step):
                chunk = members[k : k + step]
                value, zero = _leaf_arrays(leaves, [tabled[pos] for pos in chunk])
                phi = leaf_shapley(value, zero, patterns[None])  # (L, P, d)
                for pos, values in zip(chunk, phi, strict=True):
                    table[offsets[pos] : offsets[pos + 1]] = values.ravel()
        self._table = table
        self._tabled = np.array(tabled, dtype=np.intp)
        self._tabled_base = offsets[:-1]
        self._tabled_dim = dims
        # Entries (tabled leaf, slot) ordered by feature, so one reduceat sums each feature.
        entries = sorted(
            (feature, pos, s)
            for pos, i in enumerate(tabled)
            for s, feature in enumerate(leaves[i].features)
        )
        self._entry_leaf = np.array([e[1] for e in entries], dtype=np.intp)
        self._entry_slot = np.array([e[2] for e in entries], dtype=np.int64)
        features = np.array([e[0] for e in entries], dtype=np.intp)
        self._entry_features, self._entry_starts = np.unique(features, return_index=True)
        # Leaves beyond the cap are computed per request, in groups of similar path length
        # padded to a multiple of 4 slots. A padding slot has zero and one fractions 1: a factor
        # 1 in every product and a contribution of exactly 0 (sent to the bias column).
        groups: dict[int, list[int]] = {}
        for i in sorted(set(range(len(leaves))) - set(tabled)):
            groups.setdefault(-(-len(leaves[i].features) // 4) * 4, []).append(i)
        self._untabled = [_Untabled.build(leaves, ids, w, self._f) for w, ids in groups.items()]

    # ---- per request -----------------------------------------------------------------------

    def _check(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self._f:
            raise ValueError(
                f"{self._forest_name} expects a 2-D float matrix with {self._f} columns "
                f"(one row per record), got shape {X.shape}"
            )
        # LightGBM drops |x| <= kZeroThreshold from a dense row: the tree sees exactly 0.0.
        return np.where(np.abs(X) <= ZERO_THRESHOLD, 0.0, X)

    def _patterns(self, X: np.ndarray) -> np.ndarray:
        """Per row and leaf, the bit mask of the leaf's path features the row satisfies."""
        if not len(self._full):  # only constant trees
            return np.zeros((len(X), 0), dtype=np.int64)
        values = X[:, self._node_feature]  # (n, nodes)
        left = values <= self._threshold
        if np.isnan(X).any():
            left = np.where(np.isnan(values), self._nan_left, left)
        if self._has_zero_missing and (X == 0.0).any():
            left = np.where(values == 0.0, self._zero_left, left)
        if len(self._cat_nodes):
            codes = X[:, self._cat_feature]
            # CategoricalDecision: NaN and negative codes (after truncation to int) go right.
            valid = codes > -1.0
            index = np.where(valid, np.minimum(codes, self._cat_width - 1), self._cat_width - 1)
            left[:, self._cat_nodes] = self._cat_lookup[self._cat_offset + index.astype(np.intp)]
        failed = np.concatenate([~left, left], axis=1).astype(np.float64)
        if self._multi.shape[0]:
            failed = np.concatenate([failed, _times(self._multi, failed) > 0.0], axis=1)
        return self._full - _times(self._slot_bits, failed).astype(np.int64)

    def _rows(self, X: np.ndarray) -> list[slice]:
        per_row = max(self._edges, len(self._entry_leaf), 1)
        step = max(1, _CHUNK_ELEMENTS // per_row)
        return [slice(k, k + step) for k in range(0, len(X), step)]

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Exact SHAP values, shape ``(n, F + 1)``: per feature, then the bias (raw score)."""
        X = self._check(X)
        out = np.zeros((len(X), self._f + 1), dtype=np.float64)
        out[:, self._f] = self._bias
        for rows in self._rows(X):
            pattern = self._patterns(X[rows])
            if len(self._entry_leaf):
                start = (
                    self._tabled_base + np.take(pattern, self._tabled, axis=1) * self._tabled_dim
                )
                index = np.take(start, self._entry_leaf, axis=1) + self._entry_slot
                values = self._table.take(index)
                out[rows, self._entry_features] += np.add.reduceat(
                    values, self._entry_starts, axis=1
                )
            for group in self._untabled:
                out[rows] += group.contributions(pattern, self._f + 1)
        return out

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        """The booster's raw score per row, from the same split decisions (a check)."""
        X = self._check(X)
        out = np.full(len(X), self._constant, dtype=np.float64)
        for rows in self._rows(X):
            reached = self._patterns(X[rows]) == self._full  # one leaf per tree
            out[rows] += reached @ self._leaf_value
        return out


@dataclass(frozen=True)
class _Untabled:
    """Leaves without a table, padded to one path length, computed from the rows' patterns."""

    leaves: np.ndarray  # (L,) leaf numbers
    value: np.ndarray  # (L,)
    zero: np.ndarray  # (L, d), 1 on padding slots
    feature: np.ndarray  # (L, d), the bias column on padding slots
    pad: np.ndarray  # (L, d) bool

    @classmethod
    def build(cls, leaves: list[Any], ids: list[int], width: int, bias: int) -> _Untabled:
        zero = np.ones((len(ids), width), dtype=np.float64)
        feature = np.full((len(ids), width), bias, dtype=np.intp)
        for row, i in enumerate(ids):
            d = len(leaves[i].features)
            zero[row, :d] = leaves[i].zero_fraction
            feature[row, :d] = leaves[i].features
        value = np.array([leaves[i].value for i in ids], dtype=np.float64)
        return cls(np.array(ids, dtype=np.intp), value, zero, feature, feature == bias)

    def contributions(self, pattern: np.ndarray, width: int) -> np.ndarray:
        """``(n, width)`` contributions of these leaves, from all leaves' patterns ``(n, *)``."""
        n = len(pattern)
        mine = np.take(pattern, self.leaves, axis=1).T  # (L, n)
        one = np.where(
            self.pad[:, None, :], 1.0, (mine[:, :, None] >> np.arange(self.zero.shape[1])) & 1
        )
        phi = leaf_shapley(self.value, self.zero, one)  # (L, n, d)
        target = self.feature[:, None, :] + (np.arange(n) * width)[None, :, None]
        return np.bincount(target.ravel(), weights=phi.ravel(), minlength=n * width).reshape(
            n, width
        )


def _times(matrix: sparse.csr_array, rows: np.ndarray) -> np.ndarray:
    """``(matrix @ rows.T).T``; one row goes through the (faster) matrix-vector product."""
    if len(rows) == 1:
        return (matrix @ rows[0])[None, :]
    return (matrix @ rows.T).T


def _leaf_arrays(leaves: list[Any], members: list[int]) -> tuple[np.ndarray, np.ndarray]:
    value = np.array([leaves[i].value for i in members], dtype=np.float64)
    zero = np.array([leaves[i].zero_fraction for i in members], dtype=np.float64)
    return value, zero
