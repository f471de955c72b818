"""Contender: whylogs as shipped (why.log per frame, then whylogs.viz calculate_drift_scores).

Runs in its own venv (whylogs.viz imports IPython); applies whylogs' numpy 2 alias first.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy

numpy.unicode_ = numpy.str_  # whylogs 1.6.4 on numpy 2 (STACK.md)

import pandas as pd  # noqa: E402
import whylogs as why  # noqa: E402
from whylogs.viz.drift.column_drift_algorithms import calculate_drift_scores  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ref", type=Path, required=True)
    parser.add_argument("--cur", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    ref, cur = pd.read_parquet(args.ref), pd.read_parquet(args.cur)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    start = time.perf_counter()
    ref_view = why.log(ref).view()
    cur_view = why.log(cur).view()
    profiled = time.perf_counter()
    scores = calculate_drift_scores(
        target_view=cur_view, reference_view=ref_view, with_thresholds=True
    )
    done = time.perf_counter()
    drifted = sorted(c for c, s in scores.items() if s and s.get("drift_category") == "DRIFT")
    result = {
        "seconds": done - start,
        "profile_seconds": profiled - start,
        "compare_seconds": done - profiled,
        "drifted": drifted,
        "rss_after_load_mb": loaded,
    }
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
