"""Batch scoring of 1M card transactions with reason codes for every referral and decline.

Side by side in one run, on the same champion and the same rows:

* riskops: the ``batch-score`` stage (Spark local[*], features by the champion's plan,
  ``mapInPandas`` with the service's engine, exact TreeSHAP tables, scored parquet and
  decision-log files written and indexed);
* the baseline a user would otherwise write: pandas features from the same plan (riskops'
  pandas compiler), ``booster.predict`` on the whole frame and ``pred_contrib`` on the rows that
  need reasons, in one process, nothing written.

Prints rows/s, peak memory (this process and its children: the JVM and Python workers) and
the ratio. The champion is trained on 60k rows of the same generator, in a temp platform
(SQLite, local lake, MLflow on SQLite).

    python benchmarks/batch_scoring.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from riskops.db import session_scope  # noqa: E402
from riskops.features.online_store import InProcessStore  # noqa: E402
from riskops.features.pandas_build import build_features_pandas  # noqa: E402
from riskops.records import DatasetVersion  # noqa: E402
from riskops.serving.loader import load_version  # noqa: E402
from riskops.stages.batch_scoring import batch_score_stage, tree_rss_mb  # noqa: E402
from riskops.synthetic import generate  # noqa: E402
from tests.serving_helpers import PSEUDONYM_KEY, ServingPlatform  # noqa: E402

MODEL = "fraud-detection"


class Peak:
    """Peak RSS of this process plus its children, sampled every 0.2 s."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, tree_rss_mb())


def _add_dataset(sp: ServingPlatform, path: Path, rows: int) -> str:
    sha = "d" * 64
    uri = sp.lake.put_file(f"datasets/{MODEL}/{sha}/data.parquet", path)
    dataset = DatasetVersion(
        id=f"{MODEL}-{sha[:16]}", model=MODEL, sha256=sha, uri=uri, source_uri=uri,
        row_count=rows, columns=pq.read_schema(path).names,
        spec_hash=sp.spec.spec_hash(),
    )  # fmt: skip
    with session_scope(sp.engine) as session:
        session.add(dataset)
    return dataset.id


def _baseline(sp: ServingPlatform, path: Path, served: object) -> tuple[float, int]:
    frame = pd.read_parquet(path)
    features = build_features_pandas(
        frame, served.plan, served.vocabulary, pseudonym_key=PSEUDONYM_KEY
    )
    scorer = served.engine.scorer
    matrix = scorer.prepare(features)
    raw = scorer.booster.predict(matrix)
    p = raw / (raw + scorer.prior_weight * (1.0 - raw))
    need = np.flatnonzero(p >= served.bands.approve_below)
    if len(need):
        scorer.booster.predict(scorer.prepare(features.iloc[need]), pred_contrib=True)
    return float(len(frame)), len(need)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f} at start")
    with tempfile.TemporaryDirectory(prefix="riskops-bench-batch-") as tmp:
        root = Path(tmp)
        os.chdir(root)  # MLflow's default artifact root is ./mlruns
        sp = ServingPlatform(root, MODEL, "fraud_detection", rows=60_000)
        version = sp.train(seed=1)
        sp.promote(version)
        data = root / "batch.parquet"
        generate("fraud_detection", args.rows, seed=99, out_path=data, progress=False)
        dataset = _add_dataset(sp, data, args.rows)
        print(f"champion v{version} trained; scoring {args.rows:,} rows of {dataset}")

        with Peak() as peak:
            started = time.perf_counter()
            result = batch_score_stage(
                platform=sp.platform, model=MODEL, dataset_version=dataset,
                cache_dir=root / "cache",
            )  # fmt: skip
            ours = time.perf_counter() - started
        explained = result.bands["refer"] + result.bands["decline"]
        print(f"riskops batch-score: {result.rows:,} rows in {ours:.1f}s = "
              f"{result.rows / ours:,.0f} rows/s, peak {peak.peak:,.0f} MB (with the JVM), "
              f"{explained:,} rows explained, {result.decision_files} decision-log files; "
              f"stage timings {result.timings}")  # fmt: skip

        served = load_version(sp.platform, MODEL, "champion", store=InProcessStore(),
                              cache_dir=root / "cache2")  # fmt: skip
        with Peak() as base_peak:
            started = time.perf_counter()
            rows, need = _baseline(sp, data, served)
            base = time.perf_counter() - started
        print(f"baseline pandas + booster.predict + pred_contrib (nothing written): {rows:,.0f} "
              f"rows in {base:.1f}s = {rows / base:,.0f} rows/s, peak {base_peak.peak:,.0f} MB, "
              f"{need:,} rows explained")  # fmt: skip
        print(f"ratio riskops / baseline: {base / ours:.2f}x throughput, "
              f"{peak.peak / max(base_peak.peak, 1):.2f}x memory")  # fmt: skip
        print(f"machine load at the end: {os.getloadavg()[0]:.1f}")
        sp.engine.dispose()


if __name__ == "__main__":
    main()
