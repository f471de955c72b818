"""Contender: riskops (profiles from sketches, drift from two profiles). Run by monitoring.py."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd

from monitoringbench import data
from riskops.monitoring import ProfileSchema, compare_profiles, profile_chunks
from riskops.monitoring.whylogs_compat import DatasetProfileView

SCHEMA = ProfileSchema(numeric=tuple(data.NUMERIC), categorical=tuple(data.CATEGORICAL))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def compare(args: argparse.Namespace) -> dict:
    ref, cur = pd.read_parquet(args.ref), pd.read_parquet(args.cur)
    loaded = _rss_mb()
    start = time.perf_counter()
    ref_view = profile_chunks([ref], SCHEMA)
    cur_view = profile_chunks([cur], SCHEMA)
    profiled = time.perf_counter()
    report = compare_profiles(ref_view, cur_view)
    done = time.perf_counter()
    # compare-only: two stored profiles (bytes) -> deserialize -> compare, best of 5
    blobs = [ref_view.serialize(), cur_view.serialize()]
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        a, b = (DatasetProfileView.deserialize(blob) for blob in blobs)
        compare_profiles(a, b)
        runs.append(time.perf_counter() - t)
    return {
        "seconds": done - start,
        "profile_seconds": profiled - start,
        "compare_seconds": done - profiled,
        "stored_compare_seconds": min(runs),
        "profile_bytes": [len(blob) for blob in blobs],
        "drifted": sorted(report.drifted()),
        "rss_after_load_mb": loaded,
    }


def chunked(args: argparse.Namespace) -> dict:
    generating = 0.0

    def timed_chunks():  # the time spent generating data is not the profiler's
        nonlocal generating
        source = data.chunks(args.rows, seed=1, chunk_rows=args.chunk_rows)
        while True:
            t = time.perf_counter()
            chunk = next(source, None)
            generating += time.perf_counter() - t
            if chunk is None:
                return
            yield chunk

    start = time.perf_counter()
    view = profile_chunks(timed_chunks(), SCHEMA)
    seconds = time.perf_counter() - start - generating
    rows = view.get_column(data.NUMERIC[0]).to_summary_dict()["counts/n"]
    return {"seconds": seconds, "generate_seconds": generating, "rows": int(rows)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["compare", "chunked"])
    parser.add_argument("--ref", type=Path)
    parser.add_argument("--cur", type=Path)
    parser.add_argument("--rows", type=int, default=0)
    parser.add_argument("--chunk-rows", type=int, default=500_000)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    result = compare(args) if args.mode == "compare" else chunked(args)
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
