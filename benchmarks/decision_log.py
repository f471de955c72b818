"""Benchmark the decision log: the request path's cost and the writer's throughput.

Decisions carry 30 features (25 numbers, 5 categories); a third are declines with 4 reason
codes. Figures:

* ``Decision(...)``: the constructor (checks and copies) on fields already computed;
* ``DecisionBatch(...)``: what the service builds per request instead (the same checks, the
  request's lists taken as they are);
* ``submit()``: the request-path call, alone, and while the writer drains a backlog in its
  thread (the GIL is shared: that is the figure that matters under load);
* writer rows/s: parquet encoding + lake write + index insert, from a full queue to empty,
  on the local lake and SQLite (or ``--database-url``).

    python benchmarks/decision_log.py                 # 200k rows
    python benchmarks/decision_log.py --rows 50000 --database-url postgresql+psycopg://...
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import hmac
import statistics
import tempfile
import time
from pathlib import Path

from riskops.db import make_engine
from riskops.lake.local import LocalLake
from riskops.serving.decision_log import (
    Decision,
    DecisionBatch,
    DecisionLog,
    canonical_sha256,
    new_decision_id,
)

NUMBERS = [f"x{i:02d}" for i in range(25)]
CATEGORIES = [f"c{i}" for i in range(5)]


def make_decision(i: int, at: dt.datetime) -> Decision:
    features: dict[str, float | str | None] = {
        name: i * 0.001 + k for k, name in enumerate(NUMBERS)
    }
    features.update({name: ("a", "b", "c")[(i + k) % 3] for k, name in enumerate(CATEGORIES)})
    decline = i % 3 == 0
    codes = (
        [{"feature": f"x{k:02d}", "contribution": 0.1 * k, "text": "reason"} for k in range(4)]
        if decline
        else []
    )
    return Decision(
        decision_id=new_decision_id(),
        decided_at=at,
        model="credit-scoring",
        version="1",
        role="champion",
        entity=hmac.new(b"k", str(i).encode(), hashlib.sha256).hexdigest(),
        input_sha256=canonical_sha256({"i": i}),
        features=features,
        score=0.9 if decline else 0.1,
        band="decline" if decline else "approve",
        reason_codes=codes,
        latency_ms=1.0,
        endpoint="score",
        request_id=None,
    )


def per_call_us(fn, n: int, repeats: int = 5) -> float:
    """Median over ``repeats`` of the mean µs per call of ``fn(i)`` for i < n."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        runs.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch-rows", type=int, default=5_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    at = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="riskops-dlog-bench-") as tmp:
        lake = LocalLake(Path(tmp) / "lake")
        engine = make_engine(args.database_url or f"sqlite:///{tmp}/riskops.db")
        # the constructor alone (its checks and copies), on fields the service has computed
        fields = {
            f.name: getattr(make_decision(0, at), f.name) for f in dataclasses.fields(Decision)
        }
        decline_us = per_call_us(lambda i: Decision(**fields), 20_000)
        fields = {
            f.name: getattr(make_decision(1, at), f.name) for f in dataclasses.fields(Decision)
        }
        approve_us = per_call_us(lambda i: Decision(**fields), 20_000)
        one = DecisionBatch.of(make_decision(0, at))
        request = {f.name: getattr(one, f.name) for f in dataclasses.fields(DecisionBatch)}
        batch_us = per_call_us(lambda i: DecisionBatch(**request), 20_000)
        # one request of one decision each, as the service submits them
        rows = [DecisionBatch.of(make_decision(i, at)) for i in range(args.rows)]

        idle = DecisionLog(lake, engine, max_queue=args.rows + 1, batch_rows=args.batch_rows)
        start = time.perf_counter()
        for row in rows:
            idle.submit(row)
        submit_idle_us = (time.perf_counter() - start) / len(rows) * 1e6

        # The writer drains the backlog of the idle log while we time submits into another one.
        busy = DecisionLog(lake, engine, max_queue=args.rows + 1, batch_rows=args.batch_rows)
        idle.start()
        write_start = time.perf_counter()
        start = time.perf_counter()
        for row in rows[: min(len(rows), 50_000)]:
            busy.submit(row)
        submit_busy_us = (time.perf_counter() - start) / min(len(rows), 50_000) * 1e6
        assert idle.close(600), "the benchmark lost decisions"
        write_s = time.perf_counter() - write_start
        size = sum(info.size for info in lake.list("decisions"))
        files = sum(1 for _ in lake.list("decisions"))
        engine.dispose()
    print(f"rows                       {args.rows}")
    print(f"Decision(...), approve     {approve_us:8.2f} µs")
    print(f"Decision(...), decline     {decline_us:8.2f} µs (4 reason codes)")
    print(f"DecisionBatch(...), decline {batch_us:7.2f} µs (one request)")
    print(f"submit(), writer idle      {submit_idle_us:8.3f} µs")
    print(f"submit(), writer busy      {submit_busy_us:8.3f} µs")
    print(f"writer                     {args.rows / write_s:8.0f} rows/s ({write_s:.2f} s)")
    print(f"files                      {files} ({size / args.rows:.0f} bytes per decision)")


if __name__ == "__main__":
    main()
