"""Benchmark reason codes: exact TreeSHAP per single row and per batch, ours against the others.

Builds a LightGBM booster on seeded synthetic data (200 trees x 31 leaves x 30 features, with
missing values), then times, per single row (rows one by one, the three methods interleaved row
by row so that load on the machine hits them alike) and per batch:

- ours: ``riskops.serving.treeshap.TreeShap.contributions``
- LightGBM: ``booster.predict(X, pred_contrib=True, num_threads=1)``
- shap: ``shap.TreeExplainer(booster).shap_values(X)``

and prints ms/row, the ratios, the largest absolute difference from LightGBM's contributions,
the table memory and the load (precompute) time.

    python benchmarks/reason_codes.py              # 500 single rows, a batch of 1000
    python benchmarks/reason_codes.py --rows 200 --json
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings

import lightgbm as lgb
import numpy as np

from riskops.serving.treeshap import TreeShap

FEATURES, TREES, LEAVES = 30, 200, 31


def build_booster(seed: int = 7, rows: int = 20_000) -> tuple[lgb.Booster, np.ndarray]:
    """The benchmark model and a held-out matrix to explain (5% missing values)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows + 2_000, FEATURES))
    logit = X[:, :6] @ np.array([1.0, -0.8, 0.6, 0.5, -0.4, 0.3]) + 0.5 * X[:, 6] * X[:, 7]
    y = (logit + rng.logistic(size=len(X)) > 0).astype(int)
    X[rng.random(X.shape) < 0.05] = np.nan
    params = {
        "objective": "binary",
        "num_leaves": LEAVES,
        "learning_rate": 0.05,
        "min_data_in_leaf": 20,
        "verbose": -1,
        "num_threads": 2,
        "seed": seed,
    }
    booster = lgb.train(params, lgb.Dataset(X[:rows], y[:rows]), num_boost_round=TREES)
    return booster, X[rows:]


def _shap_explainer(booster: lgb.Booster) -> object:
    import shap

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return shap.TreeExplainer(booster)


def run(single_rows: int, batch_rows: int) -> dict[str, float]:
    """Times the three methods; returns the figures."""
    booster, X = build_booster()
    started = time.perf_counter()
    ours = TreeShap.from_booster(booster)
    load_s = time.perf_counter() - started
    explainer = _shap_explainer(booster)
    methods = {
        "ours": ours.contributions,
        "pred_contrib": lambda x: booster.predict(x, pred_contrib=True, num_threads=1),
        "shap": explainer.shap_values,
        "score": lambda x: booster.predict(x, raw_score=True, num_threads=1),
    }
    for method in methods.values():  # warm up
        method(X[:2])
    totals = dict.fromkeys(methods, 0.0)
    for i in range(single_rows):
        row = X[i : i + 1]
        for name, method in methods.items():
            started = time.perf_counter()
            method(row)
            totals[name] += time.perf_counter() - started
    single = {name: total / single_rows * 1e3 for name, total in totals.items()}
    batch = {}
    block = X[:batch_rows]
    for name, method in methods.items():
        started = time.perf_counter()
        method(block)
        batch[name] = (time.perf_counter() - started) / batch_rows * 1e3
    reference = booster.predict(block, pred_contrib=True)
    ours_batch = ours.contributions(block)
    ours_single = np.vstack([ours.contributions(X[i : i + 1]) for i in range(single_rows)])
    raw = booster.predict(block, raw_score=True)
    return {
        "single_ms_ours": single["ours"],
        "single_ms_pred_contrib": single["pred_contrib"],
        "single_ms_shap": single["shap"],
        "single_ms_score": single["score"],
        "batch_ms_per_row_ours": batch["ours"],
        "batch_ms_per_row_pred_contrib": batch["pred_contrib"],
        "batch_ms_per_row_shap": batch["shap"],
        "max_abs_diff_batch": float(np.abs(ours_batch - reference).max()),
        "max_abs_diff_single": float(np.abs(ours_single - reference[:single_rows]).max()),
        "max_abs_additivity": float(np.abs(ours_batch.sum(axis=1) - raw).max()),
        "table_mb": ours.table_bytes / 2**20,
        "untabled_leaves": ours.fallback_leaves,
        "table_blocks": ours.table_blocks,
        "load_s": load_s,
        "load_average_1m": os.getloadavg()[0],
    }


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500, help="single rows timed one by one")
    parser.add_argument("--batch", type=int, default=1000, help="rows of the batch")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    # shap 0.51 warns on every LightGBM binary explanation that its output format changed.
    warnings.filterwarnings("ignore", message="LightGBM binary classifier", category=UserWarning)
    figures = run(args.rows, args.batch)
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    f = figures
    print(f"model: {TREES} trees x {LEAVES} leaves x {FEATURES} features")
    print(f"load (precompute) {f['load_s']:.2f} s, tables {f['table_mb']:.1f} MiB, ", end="")
    print(f"{f['table_blocks']} blocks, untabled leaves {f['untabled_leaves']}, ", end="")
    print(f"load average {f['load_average_1m']:.2f}")
    print(f"{'ms per row':<22}{'single':>10}{'batch':>10}")
    for name in ("ours", "pred_contrib", "shap"):
        print(f"{name:<22}{f['single_ms_' + name]:>10.3f}{f['batch_ms_per_row_' + name]:>10.4f}")
    print(f"{'score only':<22}{f['single_ms_score']:>10.3f}")
    for other in ("shap", "pred_contrib"):
        s = f[f"single_ms_{other}"] / f["single_ms_ours"]
        b = f[f"batch_ms_per_row_{other}"] / f["batch_ms_per_row_ours"]
        print(f"ours faster than {other:<13} single x{s:.2f}, batch x{b:.2f}")
    print(f"max |ours - pred_contrib|: batch {f['max_abs_diff_batch']:.2e}, ", end="")
    print(f"single {f['max_abs_diff_single']:.2e}; additivity {f['max_abs_additivity']:.2e}")


if __name__ == "__main__":
    main()
