"""Contender: Evidently 0.7.23 ``DataDriftPreset`` (Report.run), in its own venv."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset

from monitoringbench import data


def _drifted(snapshot: object) -> list[str]:
    """Columns Evidently marks as drifted (ValueDrift metric result above its threshold)."""
    found = []
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("ValueDrift"):
            threshold = config.get("threshold")
            method = str(config.get("method", ""))
            value = metric.get("value")
            # p-value tests drift below the threshold, distances above it (Evidently's rule)
            if threshold is not None and value is not None:
                pvalue = "p_value" in method or "test" in method.lower()
                if (value < threshold) if pvalue else (value >= threshold):
                    found.append(config["column"])
    return sorted(found)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ref", type=Path, required=True)
    parser.add_argument("--cur", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    ref, cur = pd.read_parquet(args.ref), pd.read_parquet(args.cur)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    definition = DataDefinition(
        numerical_columns=data.NUMERIC, categorical_columns=data.CATEGORICAL
    )
    start = time.perf_counter()
    reference = Dataset.from_pandas(ref, data_definition=definition)
    current = Dataset.from_pandas(cur, data_definition=definition)
    prepared = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    done = time.perf_counter()
    result = {
        "seconds": done - start,
        "profile_seconds": prepared - start,  # Dataset.from_pandas (Evidently has no profile)
        "compare_seconds": done - prepared,
        "drifted": _drifted(snapshot),
        "rss_after_load_mb": loaded,
    }
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
