"""A LightGBM booster's trees as flat arrays: every split node, and every leaf's root path.

Read from ``booster.dump_model()``, which prints thresholds and leaf values with 17 significant
digits (exact round trip of a double) and categorical splits as the category list of the bitset.
Covers are ``internal_count`` / ``leaf_count``, the data counts LightGBM's own TreeSHAP uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

MISSING_NONE, MISSING_ZERO, MISSING_NAN = 0, 1, 2
_MISSING = {"None": MISSING_NONE, "Zero": MISSING_ZERO, "NaN": MISSING_NAN}


@dataclass
class Leaf:
    """One leaf: its value and the unique features of its root path.

    ``features[s]`` is the feature of slot ``s``; ``zero_fraction[s]`` the product of the cover
    ratios of the splits on that feature along the path; ``path`` lists ``(node, went_left,
    slot)`` for each split on the path (a slot is satisfied when every one of its splits is).
    """

    tree: int
    value: float
    features: list[int]
    zero_fraction: list[float]
    path: list[tuple[int, bool, int]]


@dataclass
class Forest:
    """Split nodes of all trees (numbered globally) and the leaves of multi-leaf trees."""

    model: str
    num_features: int
    feature_names: list[str]
    node_feature: list[int] = field(default_factory=list)
    node_threshold: list[float] = field(default_factory=list)
    node_missing: list[int] = field(default_factory=list)
    node_default_left: list[bool] = field(default_factory=list)
    node_categories: list[list[int] | None] = field(default_factory=list)
    leaves: list[Leaf] = field(default_factory=list)
    expected_value: float = 0.0  # sum over trees of LightGBM's Tree::ExpectedValue
    constant: float = 0.0  # sum of the values of single-leaf trees (part of expected_value)
    num_trees: int = 0


def describe(booster: Any) -> str:
    """A short name for a booster in error messages."""
    return f"LightGBM booster ({booster.num_trees()} trees, {booster.num_feature()} features)"


def read_forest(booster: Any) -> Forest:
    """Flatten ``booster``'s trees; refuses models TreeSHAP here cannot explain exactly."""
    name = describe(booster)
    dump = booster.dump_model()
    if int(dump.get("num_tree_per_iteration", 1)) != 1 or int(dump.get("num_class", 1)) != 1:
        raise ValueError(
            f"{name} has objective {dump.get('objective')!r} with {dump.get('num_class')} "
            "classes: reason codes support one tree per iteration (binary or regression "
            "objectives) only; explain a multiclass model per class with pred_contrib instead"
        )
    if str(booster.params.get("linear_tree", "false")).lower() in {"true", "1"}:
        raise ValueError(
            f"{name} has linear trees (linear_tree=true): TreeSHAP explains constant leaves "
            "only; retrain without linear_tree or use booster.predict(pred_contrib=True)"
        )
    forest = Forest(
        model=name,
        num_features=int(dump["max_feature_idx"]) + 1,
        feature_names=list(dump["feature_names"]),
    )
    for tree_index, info in enumerate(dump["tree_info"]):
        _read_tree(forest, tree_index, info["tree_structure"])
    forest.num_trees = len(dump["tree_info"])
    return forest


def _count(node: dict[str, Any]) -> float:
    return float(node["internal_count"] if "split_index" in node else node["leaf_count"])


def _refuse_linear(forest: Forest, node: dict[str, Any]) -> None:
    if "leaf_const" in node:
        raise ValueError(
            f"{forest.model} has linear trees (leaf_const in its dump): TreeSHAP explains "
            "constant leaves only; retrain without linear_tree or use pred_contrib"
        )


def _read_tree(forest: Forest, tree: int, root: dict[str, Any]) -> None:
    if "split_index" not in root:  # a constant tree: only the bias
        _refuse_linear(forest, root)
        forest.expected_value += float(root["leaf_value"])
        forest.constant += float(root["leaf_value"])
        return
    total = float(root["internal_count"])
    expected = {}  # leaf_index -> share * value, summed in leaf order as LightGBM does
    # Depth-first, iteratively (paths can be deeper than Python's recursion limit allows).
    stack: list[tuple[dict[str, Any], list[tuple[int, bool, float, int]]]] = [(root, [])]
    while stack:
        node, path = stack.pop()
        if "split_index" not in node:
            _refuse_linear(forest, node)
            forest.leaves.append(_leaf(tree, node, path))
            expected[int(node["leaf_index"])] = (
                float(node["leaf_count"]) / total * float(node["leaf_value"])
            )
            continue
        index = len(forest.node_feature)
        feature = int(node["split_feature"])
        forest.node_feature.append(feature)
        forest.node_missing.append(_MISSING[node["missing_type"]])
        forest.node_default_left.append(bool(node["default_left"]))
        if node["decision_type"] == "==":
            cats = [int(c) for c in str(node["threshold"]).split("||") if c != ""]
            forest.node_categories.append(cats)
            forest.node_threshold.append(np.nan)
        elif node["decision_type"] == "<=":
            forest.node_categories.append(None)
            forest.node_threshold.append(float(node["threshold"]))
        else:
            raise ValueError(
                f"{forest.model}: tree {tree} node {node['split_index']} has decision type "
                f"{node['decision_type']!r}; only '<=' and '==' exist in LightGBM 4"
            )
        cover = float(node["internal_count"])
        for child, left in ((node["right_child"], False), (node["left_child"], True)):
            stack.append((child, [*path, (index, left, _count(child) / cover, feature)]))
    forest.expected_value += sum(expected[i] for i in sorted(expected))


def _leaf(tree: int, node: dict[str, Any], path: list[tuple[int, bool, float, int]]) -> Leaf:
    features: list[int] = []
    zero: list[float] = []
    steps: list[tuple[int, bool, int]] = []
    for index, left, ratio, feature in path:
        if feature in features:  # a repeated feature: one slot, cover ratios multiply
            slot = features.index(feature)
            zero[slot] *= ratio
        else:
            slot = len(features)
            features.append(feature)
            zero.append(ratio)
        steps.append((index, left, slot))
    return Leaf(tree, float(node["leaf_value"]), features, zero, steps)
