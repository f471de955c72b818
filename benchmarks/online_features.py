"""Microseconds per OnlineFeatureBuilder.compute() for fraud records, in process and on Redis.

A generated fraud stream (200 cards, 700 merchants over 90 days, squeezed so that windows fill
up) is replayed once to warm the store, then timed record by record; read-only calls (shadow
scoring) are timed too. Redis is the one at ``--redis-url`` (loopback here, so the figure is
mostly the script's own cost plus one local round trip).

    python benchmarks/online_features.py
    python benchmarks/online_features.py --rows 20000 --redis-url redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import pandas as pd

from riskops.features import feature_plan
from riskops.features.online import OnlineFeatureBuilder
from riskops.features.online_store import InProcessStore, RedisStore
from riskops.features.pandas_build import learn_vocabulary_pandas
from riskops.specs import load_spec
from riskops.synthetic import generate

SPEC = Path(__file__).resolve().parents[1] / "models" / "fraud-detection.yaml"


def _records(rows: int, squeeze: float) -> tuple[pd.DataFrame, list[dict]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fraud.parquet"
        generate("fraud_detection", rows, 5, path, progress=False)
        frame = pd.read_parquet(path)
    start = frame["event_time"].min()
    frame["event_time"] = (start + (frame["event_time"] - start) / squeeze).dt.floor("us")
    frame = frame.sort_values("event_time", kind="mergesort")
    records = []
    for row in frame.to_dict("records"):
        row["event_time"] = row["event_time"].value // 1000
        row["amount"] = None if math.isnan(row["amount"]) else float(row["amount"])
        records.append(row)
    return frame, records


def _time(builder: OnlineFeatureBuilder, records: list[dict], record_event: bool) -> list[float]:
    out = []
    for record in records:
        began = time.perf_counter_ns()
        builder.compute(record, record_event=record_event)
        out.append((time.perf_counter_ns() - began) / 1000)
    return out


def main() -> None:
    """Run the benchmark and print µs per compute()."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--squeeze", type=float, default=10.0)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    spec = load_spec(SPEC)
    frame, records = _records(args.rows, args.squeeze)
    plan = feature_plan(spec, frame.columns)
    vocabulary = learn_vocabulary_pandas(frame, plan)
    warm, timed = records[: len(records) // 2], records[len(records) // 2 :]
    prefix = f"riskops:bench:{uuid.uuid4().hex}"
    stores = {
        "in-process": InProcessStore(),
        "redis": RedisStore(args.redis_url, key_prefix=prefix),
    }
    print(f"fraud plan: {len(plan.features)} features, {len(timed)} timed records")
    for name, store in stores.items():
        builder = OnlineFeatureBuilder(plan, vocabulary, pseudonym_key="bench", store=store)
        _time(builder, warm, True)
        write = _time(builder, timed, True)
        read = _time(builder, timed[: len(timed) // 2], False)
        for label, values in (("compute", write), ("compute read-only", read)):
            q = statistics.quantiles(values, n=100)
            print(
                f"{name:10s} {label:18s} mean {statistics.fmean(values):7.1f} µs  "
                f"p50 {q[49]:7.1f}  p99 {q[98]:7.1f}"
            )
        window = [builder.compute(r, record_event=False).features for r in timed[-200:]]
        read_back = statistics.fmean(
            f["card_txn_count_7d"] + f["merchant_txn_count_7d"] for f in window
        )
        print(f"{name:10s} events read per record (card + merchant, 7 days): {read_back:.1f}")
        if isinstance(store, RedisStore):
            store.clear(plan.model)


if __name__ == "__main__":
    main()
