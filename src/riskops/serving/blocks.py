"""Blocks of leaves and their contribution tables, built once when a booster is loaded.

A block is a subtree (or a single leaf) of one tree. Its table is indexed by a bit pattern: one
bit per unique feature on the path from the root to the block (set when the row satisfies every
split on that feature there), then one bit per split inside the block (set when the row goes
left). That pattern decides every leaf's one fractions, so a table row holds the sum of the
block's leaves' exact contributions, per feature of the block. One lookup per block replaces one
per leaf (Fast TreeSHAP v2 tabulates per leaf; a block of one leaf is exactly that).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from riskops.serving.forest import Forest, Leaf
from riskops.serving.shapley import all_patterns, leaf_shapley


@dataclass(frozen=True)
class Block:
    """Leaves of one subtree, below ``depth`` shared path steps."""

    leaves: list[int]  # indices into Forest.leaves
    depth: int  # length of the shared root path
    prior: list[int]  # unique features on the shared path (bit s <-> prior[s])
    prior_edges: list[list[tuple[int, bool]]]  # per prior feature: (node, went_left) splits
    splits: list[int]  # nodes inside the block (bit len(prior) + j <-> splits[j])
    features: list[int]  # table columns: union of the leaves' path features

    @property
    def bits(self) -> int:
        """Width of the pattern."""
        return len(self.prior) + len(self.splits)

    @property
    def nbytes(self) -> int:
        """Memory of the block's table."""
        return len(self.features) * 8 << self.bits


def form_blocks(forest: Forest, max_bits: int) -> list[Block]:
    """Cut every tree into blocks whose pattern has at most ``max_bits`` bits (or single leaves)."""
    by_tree: dict[int, list[int]] = {}
    for i, leaf in enumerate(forest.leaves):
        by_tree.setdefault(leaf.tree, []).append(i)
    blocks: list[Block] = []
    for members in by_tree.values():
        _cut(forest.leaves, members, 0, max_bits, blocks)
    return blocks


def _cut(leaves: list[Leaf], members: list[int], depth: int, max_bits: int, out: list) -> None:
    if len(members) == 1:  # a leaf on its own: its whole path is shared
        depth = len(leaves[members[0]].path)
    shared = leaves[members[0]].path[:depth]
    prior: list[int] = []
    prior_edges: list[list[tuple[int, bool]]] = []
    first = leaves[members[0]]
    for node, left, slot in shared:
        feature = first.features[slot]
        if feature not in prior:
            prior.append(feature)
            prior_edges.append([])
        prior_edges[prior.index(feature)].append((node, left))
    splits = sorted({n for i in members for n, _, _ in leaves[i].path[depth:]})
    if len(members) == 1 or len(prior) + len(splits) <= max_bits:
        features = sorted({f for i in members for f in leaves[i].features})
        out.append(Block(members, depth, prior, prior_edges, splits, features))
        return
    for went_left in (True, False):
        side = [i for i in members if leaves[i].path[depth][1] is went_left]
        _cut(leaves, side, depth + 1, max_bits, out)


def block_tables(forest: Forest, blocks: list[Block], chunk_bytes: int = 32 << 20) -> list:
    """Each block's ``(2**bits, len(features))`` table: its contributions for every pattern.

    Leaf tables (every one-fraction pattern of the leaf's own path features) are computed for a
    chunk of blocks at a time, leaves of one path length together, then gathered into the
    blocks' rows.
    """
    tables, chunk, size = [], [], 0
    for block in blocks:
        chunk.append(block)
        size += sum(
            len(forest.leaves[i].features) * 8 << len(forest.leaves[i].features)
            for i in block.leaves
        )
        if size >= chunk_bytes:
            tables += _assemble(forest, chunk)
            chunk, size = [], 0
    return tables + _assemble(forest, chunk) if chunk else tables


def _assemble(forest: Forest, blocks: list[Block]) -> list[np.ndarray]:
    leaf_table = _leaf_tables(forest, sorted({i for b in blocks for i in b.leaves}))
    return [_block_table(forest, block, leaf_table) for block in blocks]


def _leaf_tables(forest: Forest, ids: list[int]) -> dict[int, np.ndarray]:
    """Per leaf, ``(2**d, d)``: row ``q`` holds phi for the one fractions of the bits of ``q``."""
    by_d: dict[int, list[int]] = {}
    for i in ids:
        by_d.setdefault(len(forest.leaves[i].features), []).append(i)
    out: dict[int, np.ndarray] = {}
    for d, members in by_d.items():
        patterns = all_patterns(d)[None]
        step = max(1, (1 << 21) // (len(patterns[0]) * d * (d // 2 + 1)))
        for k in range(0, len(members), step):
            part = members[k : k + step]
            value = np.array([forest.leaves[i].value for i in part])
            zero = np.array([forest.leaves[i].zero_fraction for i in part])
            out.update(zip(part, leaf_shapley(value, zero, patterns), strict=True))
    return out


def _block_table(forest: Forest, block: Block, leaf_table: dict[int, np.ndarray]) -> np.ndarray:
    p = np.arange(1 << block.bits, dtype=np.int64)
    bits = ((p[:, None] >> np.arange(block.bits)) & 1).astype(bool)  # (P, bits)
    split_bit = {n: len(block.prior) + j for j, n in enumerate(block.splits)}
    column = {f: c for c, f in enumerate(block.features)}
    table = np.zeros((len(p), len(block.features)), dtype=np.float64)
    for i in block.leaves:
        leaf = forest.leaves[i]
        one = np.ones((len(p), len(leaf.features)), dtype=bool)
        for s, feature in enumerate(leaf.features):
            if feature in block.prior:
                one[:, s] &= bits[:, block.prior.index(feature)]
        for node, left, s in leaf.path[block.depth :]:
            one[:, s] &= bits[:, split_bit[node]] == left
        q = one.astype(np.int64) @ (1 << np.arange(len(leaf.features), dtype=np.int64))
        table[:, [column[f] for f in leaf.features]] += leaf_table[i][q]
    return table
