"""Exact TreeSHAP for LightGBM boosters, fast enough for per-request reason codes.

Fast TreeSHAP v2 style, one step further: at load time each tree is cut into blocks (subtrees,
:mod:`riskops.serving.blocks`) and, for every bit pattern of a block (which unique features of
the path above it the row satisfies, and which way it goes at each split inside it), the sum of
its leaves' exact contributions per feature is tabulated (:mod:`riskops.serving.shapley`).
Explaining a row then takes every split decision at once, turns them into one pattern per block
(a sparse matrix product), looks the contributions up and sums them per feature: a few vectorised
numpy passes, no recursion. Leaves of blocks whose table would pass the memory cap are computed
exactly per request instead (same formula, evaluated on the row's own pattern).

The contributions equal ``booster.predict(X, pred_contrib=True)`` (same covers, same split
semantics as LightGBM's ``Tree::Decision``), last column the bias (sum of the trees' expected
values), and each row sums to ``booster.predict(X, raw_score=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from riskops.serving.blocks import block_tables, form_blocks
from riskops.serving.forest import MISSING_NAN, MISSING_ZERO, Forest, Leaf, read_forest
from riskops.serving.shapley import leaf_shapley

ZERO_THRESHOLD = float(np.float32(1e-35))  # LightGBM's kZeroThreshold (a float literal)
_MAX_BITS = 52  # patterns are bit masks summed exactly in float64
_CHUNK_ELEMENTS = 1 << 21  # bound on per-chunk temporaries (elements) for batches


class TreeShap:
    """Exact TreeSHAP contributions of a LightGBM booster, precomputed per block pattern."""

    def __init__(self, forest: Forest, max_table_mb: float = 256.0, block_bits: int = 12) -> None:
        self._forest_name = forest.model
        self._names = list(forest.feature_names)
        self._f = forest.num_features
        self._bias = forest.expected_value
        self._constant = forest.constant
        self._decisions(forest)
        self._layout(forest, max_table_mb, block_bits)

    @classmethod
    def from_booster(
        cls, booster: Any, *, max_table_mb: float = 256.0, block_bits: int = 12
    ) -> TreeShap:
        """Precompute the explainer of ``booster`` (a ``lightgbm.Booster``).

        Args:
            booster: a binary or regression booster with constant leaves.
            max_table_mb: memory for the tables; leaves beyond it are computed per request.
            block_bits: largest pattern width of a block of several leaves (table rows 2**bits).
        """
        if max_table_mb < 0:
            raise ValueError(f"max_table_mb must be >= 0, got {max_table_mb}")
        if not 0 <= block_bits <= _MAX_BITS:
            raise ValueError(f"block_bits must be in [0, {_MAX_BITS}], got {block_bits}")
        return cls(read_forest(booster), max_table_mb=max_table_mb, block_bits=block_bits)

    @property
    def feature_names(self) -> list[str]:
        """The booster's feature names, in column order of ``X`` and of the contributions."""
        return list(self._names)

    @property
    def table_bytes(self) -> int:
        """Memory held by the precomputed contribution tables."""
        return int(self._table.nbytes)

    @property
    def table_blocks(self) -> int:
        """Number of tabled blocks: table lookups per explained row."""
        return len(self._block_const)

    @property
    def fallback_leaves(self) -> int:
        """Number of leaves computed per request because their table passed the memory cap."""
        return sum(len(group.columns) for group in self._untabled)

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

    def _layout(self, forest: Forest, max_table_mb: float, block_bits: int) -> None:
        leaves, nodes = forest.leaves, len(forest.node_feature)
        for leaf in leaves:
            if len(leaf.features) > _MAX_BITS:
                raise ValueError(
                    f"{forest.model}: a leaf of tree {leaf.tree} has {len(leaf.features)} "
                    f"unique features on its path; at most {_MAX_BITS} are supported"
                )
        columns = _Columns(nodes)
        blocks = form_blocks(forest, block_bits)
        budget, used, tabled, untabled = max_table_mb * 2**20, 0, [], []
        for block in sorted(blocks, key=lambda b: b.nbytes):
            if used + block.nbytes <= budget:
                used += block.nbytes
                tabled.append(block)
            else:
                untabled += block.leaves
        # Block patterns: prior feature bits start set and are cleared by a failed split; split
        # bits are set by "went left" (column nodes + n of the failure vector).
        rows, cols, weights = [], [], []
        for row, block in enumerate(tabled):
            for s, edges in enumerate(block.prior_edges):
                rows.append(row)
                cols.append(columns.failed(edges))
                weights.append(-float(1 << s))
            for j, node in enumerate(block.splits):
                rows.append(row)
                cols.append(nodes + node)
                weights.append(float(1 << (len(block.prior) + j)))
        self._block_const = np.array([(1 << len(b.prior)) - 1 for b in tabled], dtype=np.int64)
        tables = block_tables(forest, tabled)
        dims = np.array([len(b.features) for b in tabled], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum([t.size for t in tables])]).astype(np.int64)
        self._table = np.concatenate([t.ravel() for t in tables]) if tables else np.zeros(0)
        self._block_base, self._block_dim = offsets[:-1], dims
        # Entries (block, column) ordered by feature, so one reduceat sums each feature.
        entries = sorted(
            (f, b, c) for b, blk in enumerate(tabled) for c, f in enumerate(blk.features)
        )
        self._entry_block = np.array([e[1] for e in entries], dtype=np.intp)
        self._entry_column = np.array([e[2] for e in entries], dtype=np.int64)
        features = np.array([e[0] for e in entries], dtype=np.intp)
        self._entry_features, self._entry_starts = np.unique(features, return_index=True)
        # Leaves without a table: per-leaf patterns (slot bits cleared by a failed split).
        untabled.sort()
        leaf_rows, leaf_cols, leaf_weights = [], [], []
        for row, i in enumerate(untabled):
            edges: dict[int, list[tuple[int, bool]]] = {}
            for n, left, s in leaves[i].path:
                edges.setdefault(s, []).append((n, left))
            for s, slot_edges in edges.items():
                leaf_rows.append(row)
                leaf_cols.append(columns.failed(slot_edges))
                leaf_weights.append(float(1 << s))
        self._leaf_full = np.array(
            [(1 << len(leaves[i].features)) - 1 for i in untabled], dtype=np.int64
        )
        groups: dict[int, list[int]] = {}
        for row, i in enumerate(untabled):  # path lengths padded to a multiple of 4 slots
            groups.setdefault(-(-len(leaves[i].features) // 4) * 4, []).append(row)
        self._untabled = [
            _Untabled.build([leaves[untabled[r]] for r in rs], rs, w, self._f)
            for w, rs in groups.items()
        ]
        width = columns.width
        self._multi = columns.matrix()
        self._block_bits = sparse.csr_array((weights, (rows, cols)), shape=(len(tabled), width))
        self._leaf_bits = sparse.csr_array(
            (leaf_weights, (leaf_rows, leaf_cols)), shape=(len(untabled), width)
        )
        # raw_score: the leaf a row reaches is the one with no failed split on its path.
        pairs = [
            (i, n if left else nodes + n) for i, f in enumerate(leaves) for n, left, _ in f.path
        ]
        self._leaf_failures = sparse.csr_array(
            (np.ones(len(pairs)), tuple(np.array(pairs, dtype=np.intp).reshape(-1, 2).T)),
            shape=(len(leaves), 2 * nodes),
        )
        self._leaf_value = np.array([leaf.value for leaf in leaves], dtype=np.float64)
        self._edges = 2 * nodes

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

    def _split_failures(self, X: np.ndarray) -> np.ndarray:
        """``(n, 2 nodes)``: [went right at node k (fails a left edge), went left at node k]."""
        values = np.take(X, self._node_feature, axis=1)  # (n, nodes)
        left = values <= self._threshold
        if np.isnan(X).any():
            left = np.where(np.isnan(values), self._nan_left, left)
        if self._has_zero_missing and (X == 0.0).any():
            left = np.where(values == 0.0, self._zero_left, left)
        if len(self._cat_nodes):
            codes = np.take(X, self._cat_feature, axis=1)
            # CategoricalDecision: NaN and negative codes (after truncation to int) go right.
            valid = codes > -1.0
            index = np.where(valid, np.minimum(codes, self._cat_width - 1), self._cat_width - 1)
            left[:, self._cat_nodes] = self._cat_lookup[self._cat_offset + index.astype(np.intp)]
        return np.concatenate([~left, left], axis=1).astype(np.float64)

    def _failed(self, X: np.ndarray) -> np.ndarray:
        """Per row: failed splits (both directions), then failed repeated-feature slots."""
        failed = self._split_failures(X)
        if self._multi.shape[0]:
            failed = np.concatenate([failed, _times(self._multi, failed) > 0.0], axis=1)
        return failed

    def _rows(self, X: np.ndarray) -> list[slice]:
        per_row = max(self._edges, len(self._entry_block), 1)
        step = max(1, _CHUNK_ELEMENTS // per_row)
        return [slice(k, k + step) for k in range(0, len(X), step)]

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Exact SHAP values, shape ``(n, F + 1)``: per feature, then the bias (raw score)."""
        X = self._check(X)
        out = np.zeros((len(X), self._f + 1), dtype=np.float64)
        out[:, self._f] = self._bias
        for rows in self._rows(X):
            failed = self._failed(X[rows])
            if len(self._entry_block):
                pattern = self._block_const + _times(self._block_bits, failed).astype(np.int64)
                start = self._block_base + pattern * self._block_dim
                index = np.take(start, self._entry_block, axis=1) + self._entry_column
                values = self._table.take(index)
                out[rows, self._entry_features] += np.add.reduceat(
                    values, self._entry_starts, axis=1
                )
            if self._untabled:
                pattern = self._leaf_full - _times(self._leaf_bits, failed).astype(np.int64)
                for group in self._untabled:
                    out[rows] += group.contributions(pattern, self._f + 1)
        return out

    def raw_score(self, X: np.ndarray) -> np.ndarray:
        """The booster's raw score per row, from the same split decisions (a check)."""
        X = self._check(X)
        out = np.full(len(X), self._constant, dtype=np.float64)
        for rows in self._rows(X):
            failures = _times(self._leaf_failures, self._split_failures(X[rows]))
            out[rows] += (failures == 0.0) @ self._leaf_value  # one leaf per tree
        return out


@dataclass(frozen=True)
class _Untabled:
    """Leaves without a table, padded to one path length, computed from the rows' patterns."""

    columns: np.ndarray  # (L,) columns of these leaves in the untabled pattern matrix
    value: np.ndarray  # (L,)
    zero: np.ndarray  # (L, d), 1 on padding slots
    feature: np.ndarray  # (L, d), the bias column on padding slots
    pad: np.ndarray  # (L, d) bool

    @classmethod
    def build(cls, leaves: list[Leaf], ids: list[int], width: int, bias: int) -> _Untabled:
        """``leaves[k]`` has pattern column ``ids[k]``; slots padded to ``width``."""
        zero = np.ones((len(ids), width), dtype=np.float64)
        feature = np.full((len(ids), width), bias, dtype=np.intp)
        for row, leaf in enumerate(leaves):
            d = len(leaf.features)
            zero[row, :d] = leaf.zero_fraction
            feature[row, :d] = leaf.features
        value = np.array([leaf.value for leaf in leaves], dtype=np.float64)
        return cls(np.array(ids, dtype=np.intp), value, zero, feature, feature == bias)

    def contributions(self, pattern: np.ndarray, width: int) -> np.ndarray:
        """``(n, width)`` contributions of these leaves, from all leaves' patterns ``(n, *)``."""
        n = len(pattern)
        mine = np.take(pattern, self.columns, axis=1).T  # (L, n)
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


class _Columns:
    """Columns of the failure vector; a slot of several splits gets a column of its own."""

    def __init__(self, nodes: int) -> None:
        self._nodes = nodes
        self._repeated: dict[tuple[int, ...], int] = {}

    def failed(self, edges: list[tuple[int, bool]]) -> int:
        """The column that is 1 when the row fails any of ``edges`` ((node, went_left) pairs)."""
        cols = tuple(sorted({n if left else self._nodes + n for n, left in edges}))
        if len(cols) == 1:
            return cols[0]
        return 2 * self._nodes + self._repeated.setdefault(cols, len(self._repeated))

    @property
    def width(self) -> int:
        """Length of the failure vector."""
        return 2 * self._nodes + len(self._repeated)

    def matrix(self) -> sparse.csr_array:
        """Counts the failed splits of each repeated slot (> 0: the slot fails)."""
        rows = [k for cols, k in self._repeated.items() for _ in cols]
        cols = [c for c in self._repeated for c in c]
        shape = (len(self._repeated), 2 * self._nodes)
        return sparse.csr_array((np.ones(len(rows)), (rows, cols)), shape=shape)
