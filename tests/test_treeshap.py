"""Exact TreeSHAP for LightGBM: equal to LightGBM's own pred_contrib, row by row and in batches."""

from __future__ import annotations

import itertools
import math
import re

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from riskops.serving.shapley import all_patterns, leaf_shapley
from riskops.serving.treeshap import TreeShap
from riskops.training.scorers import LightGBMScorer

TOLERANCE = 1e-6


def _train(X: np.ndarray | pd.DataFrame, y: np.ndarray, rounds: int, **params: object):
    base = {"objective": "binary", "verbose": -1, "num_threads": 1, "seed": 3}
    return lgb.train({**base, **params}, lgb.Dataset(X, y), num_boost_round=rounds)


def _assert_exact(
    booster: lgb.Booster, X: np.ndarray, explainer: TreeShap | None = None, singles: int = 40
) -> None:
    """Batch and single rows equal pred_contrib; rows add up to the raw score."""
    explainer = explainer or TreeShap.from_booster(booster)
    reference = booster.predict(X, pred_contrib=True)
    ours = explainer.contributions(X)
    assert ours.shape == reference.shape == (len(X), booster.num_feature() + 1)
    assert np.abs(ours - reference).max() <= TOLERANCE
    for i in range(min(len(X), singles)):
        single = explainer.contributions(X[i : i + 1])
        assert np.abs(single - reference[i : i + 1]).max() <= TOLERANCE
    raw = booster.predict(X, raw_score=True)
    assert np.abs(explainer.raw_score(X) - raw).max() <= TOLERANCE
    assert np.abs(ours.sum(axis=1) - raw).max() <= TOLERANCE


def _splits(booster: lgb.Booster) -> list[dict]:
    found = []

    def walk(node: dict) -> None:
        if "split_index" in node:
            found.append(node)
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in booster.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return found


def _numeric(rows: int, features: int, seed: int, nan_share: float = 0.1):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features))
    logit = X[:, 0] - 0.7 * X[:, 1] + 0.5 * X[:, 2] * X[:, 3]
    y = (logit + rng.logistic(size=rows) > 0).astype(int)
    X[rng.random(X.shape) < nan_share] = np.nan
    return X, y


def test_leaf_shapley_equals_subset_enumeration() -> None:
    """The quadrature formula equals the Shapley sum over every subset, term by term."""
    rng = np.random.default_rng(0)
    for d in range(1, 8):
        zero = rng.uniform(0.01, 1.0, size=(3, d))
        value = rng.normal(size=3)
        one = all_patterns(d)
        phi = leaf_shapley(value, zero, one[None].repeat(3, axis=0))
        for leaf, p, s in itertools.product(range(3), range(2**d), range(d)):
            others = [j for j in range(d) if j != s]
            total = 0.0
            for k in range(d):
                weight = math.factorial(k) * math.factorial(d - k - 1) / math.factorial(d)
                for subset in itertools.combinations(others, k):
                    term = np.prod([one[p, j] for j in subset])
                    term *= np.prod([zero[leaf, j] for j in others if j not in subset])
                    total += weight * term
            expected = value[leaf] * (one[p, s] - zero[leaf, s]) * total
            assert abs(phi[leaf, p, s] - expected) <= 1e-12


def test_numeric_with_nans_single_rows_and_batches() -> None:
    X, y = _numeric(3000, 8, seed=1)
    booster = _train(X, y, rounds=40, num_leaves=15)
    assert any(s["missing_type"] == "NaN" for s in _splits(booster))
    test, _ = _numeric(300, 8, seed=2, nan_share=0.2)
    test[:5] = np.nan  # all-missing rows
    test[5:10] = 0.0
    test[10, 0] = 1e-36  # LightGBM reads |x| <= 1e-35 as 0
    _assert_exact(booster, test)


def test_categorical_splits_with_unseen_nan_and_negative_codes() -> None:
    rng = np.random.default_rng(4)
    n = 4000
    colour = rng.integers(0, 12, size=n)
    region = rng.integers(0, 40, size=n)
    amount = rng.normal(size=n)
    logit = np.isin(colour, [1, 4, 7]) * 1.5 - np.isin(region, range(0, 40, 3)) + amount
    y = (logit + rng.logistic(size=n) > 0).astype(int)
    frame = pd.DataFrame(
        {
            "amount": amount,
            "colour": pd.Categorical(colour, categories=range(12)),
            "region": pd.Categorical(region, categories=range(40)),
        }
    )
    booster = _train(frame, y, rounds=30, num_leaves=15, max_cat_to_onehot=4, cat_smooth=1)
    kinds = {s["decision_type"] for s in _splits(booster)}
    assert kinds == {"<=", "=="}
    test = np.column_stack(
        [
            rng.normal(size=400),
            rng.integers(0, 12, size=400).astype(float),
            rng.integers(0, 40, size=400).astype(float),
        ]
    )
    test[:20, 1] = np.nan
    test[20:40, 2] = -1.0  # negative code: right
    test[40:60, 1] = 25.0  # unseen code, beyond every bitset
    test[60:80, 2] = 1000.0
    test[80:90, 1] = -0.5  # truncates to code 0, as static_cast<int> does
    test[90:100, 2] = 3.7  # truncates to 3
    test[100:110, 0] = np.nan
    _assert_exact(booster, test)


def test_rows_prepared_by_the_lightgbm_scorer() -> None:
    """The matrix LightGBMScorer.prepare_array builds for the online path (codes as floats)."""
    rng = np.random.default_rng(5)
    n = 3000
    frame = pd.DataFrame(
        {
            "income": rng.lognormal(10, 0.5, size=n),
            "channel": rng.choice(["web", "branch", "phone", "partner"], size=n),
        }
    )
    y = ((frame["channel"] == "partner") * 1.2 + rng.logistic(size=n) > 0.6).astype(int)
    categories = {"channel": ["branch", "partner", "phone", "web"]}
    scorer = LightGBMScorer(None, ["income"], ["channel"], categories)
    booster = _train(scorer.prepare(frame), y.to_numpy(), rounds=20, num_leaves=7)
    scorer.booster = booster
    requests = pd.DataFrame(
        {
            "income": [35000.0, np.nan, 50000.0, 1.0],
            "channel": ["partner", "web", "kiosk", None],  # kiosk: unseen, None: missing
        }
    )
    X = scorer.prepare_array(requests)
    _assert_exact(booster, X)
    np.testing.assert_allclose(
        TreeShap.from_booster(booster).raw_score(X),
        booster.predict(scorer.prepare(requests), raw_score=True),
        atol=TOLERANCE,
    )


@pytest.mark.parametrize("block_bits", [0, 4, 20])
def test_every_block_size_is_exact(block_bits: int) -> None:
    """Leaf tables only (0), small blocks, and blocks as large as whole small trees (20)."""
    X, y = _numeric(3000, 6, seed=22, nan_share=0.1)
    X[:, 5] = np.round(X[:, 5])  # few distinct values: the same feature split again and again
    booster = _train(X, y, rounds=20, num_leaves=12)
    explainer = TreeShap.from_booster(booster, block_bits=block_bits)
    leaves = sum(t["num_leaves"] for t in booster.dump_model()["tree_info"])
    if block_bits == 0:
        assert explainer.table_blocks == leaves
    else:
        assert explainer.table_blocks < leaves
    test, _ = _numeric(300, 6, seed=23, nan_share=0.2)
    _assert_exact(booster, test, explainer)


def test_zero_as_missing() -> None:
    X, y = _numeric(3000, 6, seed=6, nan_share=0.05)
    X[np.random.default_rng(7).random(X.shape) < 0.2] = 0.0
    booster = _train(X, y, rounds=30, num_leaves=15, zero_as_missing=True)
    assert any(s["missing_type"] == "Zero" for s in _splits(booster))
    test, _ = _numeric(300, 6, seed=8, nan_share=0.15)
    test[np.random.default_rng(9).random(test.shape) < 0.2] = 0.0
    _assert_exact(booster, test)


def test_use_missing_false() -> None:
    X, y = _numeric(3000, 6, seed=10, nan_share=0.1)
    booster = _train(X, y, rounds=30, num_leaves=15, use_missing=False)
    assert {s["missing_type"] for s in _splits(booster)} == {"None"}
    test, _ = _numeric(300, 6, seed=11, nan_share=0.2)
    test[:10] = 0.0
    _assert_exact(booster, test)


def _insert_constant_trees(booster: lgb.Booster, values: list[float]) -> lgb.Booster:
    """The booster with single-leaf trees interleaved (model text, renumbered)."""
    text = booster.model_to_string()
    head, rest = text.split("\nTree=0\n", 1)
    trees, tail = rest.split("\nend of trees", 1)
    blocks = ("Tree=0\n" + trees).strip("\n").split("\n\n\n")
    for i, value in enumerate(values):
        constant = (
            "Tree=0\nnum_leaves=1\nnum_cat=0\nsplit_feature=\nsplit_gain=\nthreshold=\n"
            f"decision_type=\nleft_child=\nright_child=\nleaf_value={value!r}\nleaf_weight=\n"
            "leaf_count=100\ninternal_value=\ninternal_weight=\ninternal_count=\nis_linear=0\n"
            "shrinkage=1"
        )
        blocks.insert(2 * i + 1, constant)
    numbered = [re.sub(r"^Tree=\d+", f"Tree={k}", b) for k, b in enumerate(blocks)]
    head = re.sub(r"\ntree_sizes=[^\n]*", "", head)
    model = head + "\n" + "\n\n\n".join(numbered) + "\n\n\nend of trees" + tail
    return lgb.Booster(model_str=model)


def test_constant_trees_go_to_the_bias() -> None:
    X, y = _numeric(2000, 5, seed=12)
    booster = _insert_constant_trees(_train(X, y, rounds=6, num_leaves=8), [0.25, -0.125, 0.5])
    leaves = [t["num_leaves"] for t in booster.dump_model()["tree_info"]]
    assert leaves.count(1) == 3 and len(leaves) == 9
    _assert_exact(booster, X[:200])

    constant = _train(X, np.ones(len(X)), rounds=3, objective="regression")
    assert [t["num_leaves"] for t in constant.dump_model()["tree_info"]] == [1]
    explainer = TreeShap.from_booster(constant)
    out = explainer.contributions(X[:10])
    assert np.all(out[:, :-1] == 0.0) and np.allclose(out[:, -1], 1.0)
    _assert_exact(constant, X[:10], explainer)


def test_leaves_beyond_the_table_cap_are_computed_exactly() -> None:
    X, y = _numeric(6000, 24, seed=13, nan_share=0.05)
    booster = _train(X, y, rounds=8, num_leaves=200, min_data_in_leaf=5)
    test, _ = _numeric(200, 24, seed=14, nan_share=0.1)
    full = TreeShap.from_booster(booster)
    none = TreeShap.from_booster(booster, max_table_mb=0)
    part = TreeShap.from_booster(booster, max_table_mb=full.table_bytes / 2**20 / 4)
    leaves = sum(t["num_leaves"] for t in booster.dump_model()["tree_info"])
    assert full.fallback_leaves == 0 and none.fallback_leaves == leaves and none.table_bytes == 0
    assert 0 < part.fallback_leaves < leaves and 0 < part.table_bytes < full.table_bytes / 4
    for explainer in (full, none, part):
        _assert_exact(booster, test, explainer)


def test_benchmark_sized_model_on_500_rows() -> None:
    """200 trees x 31 leaves x 30 features, the size the issue states for the scoring service."""
    X, y = _numeric(8000, 30, seed=15, nan_share=0.05)
    booster = _train(X, y, rounds=200, num_leaves=31, num_threads=2)
    test, _ = _numeric(500, 30, seed=16, nan_share=0.05)
    explainer = TreeShap.from_booster(booster)
    assert explainer.feature_names == booster.feature_name()
    assert explainer.table_bytes > 0 and explainer.fallback_leaves == 0
    _assert_exact(booster, test, explainer, singles=len(test))


def test_explanation_is_additive() -> None:
    X, y = _numeric(3000, 10, seed=17)
    booster = _train(X, y, rounds=50, num_leaves=31, objective="regression")
    explainer = TreeShap.from_booster(booster)
    out = explainer.contributions(X[:300])
    raw = booster.predict(X[:300], raw_score=True)
    assert np.abs(out.sum(axis=1) - raw).max() <= 1e-9
    expected = booster.predict(X[:1], pred_contrib=True)[0, -1]
    assert explainer.expected_value == pytest.approx(expected, abs=1e-12)
    assert np.all(out[:, -1] == explainer.expected_value)


def test_refuses_multiclass() -> None:
    X, _ = _numeric(600, 4, seed=18)
    y = np.random.default_rng(19).integers(0, 3, size=len(X))
    booster = _train(X, y, rounds=3, objective="multiclass", num_class=3)
    with pytest.raises(ValueError, match=r"LightGBM booster \(9 trees, 4 features\).*multiclass"):
        TreeShap.from_booster(booster)


def test_refuses_linear_trees() -> None:
    X, y = _numeric(600, 4, seed=20, nan_share=0.0)
    booster = _train(X, y.astype(float), rounds=3, objective="regression", linear_tree=True)
    with pytest.raises(ValueError, match=r"LightGBM booster \(3 trees, 4 features\).*linear"):
        TreeShap.from_booster(booster)
    reloaded = lgb.Booster(model_str=booster.model_to_string())
    with pytest.raises(ValueError, match="linear"):
        TreeShap.from_booster(reloaded)


def test_refuses_a_matrix_of_the_wrong_shape() -> None:
    X, y = _numeric(600, 4, seed=21)
    explainer = TreeShap.from_booster(_train(X, y, rounds=3))
    with pytest.raises(ValueError, match=r"expects a 2-D float matrix with 4 columns.*\(3, 5\)"):
        explainer.contributions(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"got shape \(4,\)"):
        explainer.contributions(np.zeros(4))
    with pytest.raises(ValueError, match="max_table_mb"):
        TreeShap.from_booster(_train(X, y, rounds=1), max_table_mb=-1)
    with pytest.raises(ValueError, match="block_bits"):
        TreeShap.from_booster(_train(X, y, rounds=1), block_bits=60)
