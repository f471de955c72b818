"""Benchmark the synthetic data generator: speed, and peak memory that does not grow with rows.

Every run happens in its own subprocess, so each peak RSS (getrusage high-water mark) belongs to
that run alone. "streamed" is riskops.synthetic.generate; "naive" is what a user writes first: the
whole DataFrame built in pandas (f-string ids, rng.choice categories) and one to_parquet call.

    python benchmarks/generate.py            # fraud 1M and 10M, 1M of each family, naive 1M
    python benchmarks/generate.py --quick    # smoke run, small sizes
    python benchmarks/generate.py --rows 2000000,20000000 --family-rows 500000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

FAMILIES = ("credit_scoring", "fraud_detection", "transaction_risk")


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB."""
    try:
        import resource
    except ImportError:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def naive_fraud(rows: int, seed: int, path: Path) -> None:
    """What a user would write first: build the whole frame in pandas, then one to_parquet."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    cards = rng.integers(1, max(2, rows // 20), rows)
    merchants = rng.integers(1, 100_000, rows)
    seconds = np.sort(rng.uniform(0, 90 * 86_400, rows))
    df = pd.DataFrame(
        {
            "transaction_id": [f"TXN-{i:012d}" for i in range(1, rows + 1)],
            "card_id": [f"CARD-{i:010d}" for i in cards],
            "event_time": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(seconds, "s"),
            "merchant_id": [f"MER-{i:010d}" for i in merchants],
            "amount": np.clip(np.round(rng.lognormal(3.7, 1.0, rows), 2), 0.01, 100_000),
            "mcc": rng.choice(["5411", "5812", "5814", "5541", "5732", "6011"], rows),
            "channel": rng.choice(["pos", "ecom", "atm", "contactless"], rows),
            "country": rng.choice(["DE", "FR", "NL", "US", "GB"], rows),
            "entry_mode": rng.choice(["chip", "swipe", "manual", "token"], rows),
            "is_fraud": (rng.random(rows) < 0.005).astype("int64"),
        }
    )
    df.to_parquet(path, index=False)


def worker(args: argparse.Namespace) -> None:
    """Run one measurement in this (fresh) process and print it as JSON."""
    from riskops.synthetic import generate

    floor = peak_rss_mb()  # interpreter + numpy/pyarrow/pandas imports
    began = time.perf_counter()
    if args.worker == "naive":
        naive_fraud(args.n, args.seed, Path(args.out))
    else:
        generate(args.family, args.n, args.seed, args.out, chunk_rows=args.chunk, progress=False)
    seconds = time.perf_counter() - began
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_mb": peak_rss_mb(),
                "floor_mb": floor,
                "file_mb": Path(args.out).stat().st_size / 2**20,
            }
        )
    )


def measure(kind: str, family: str, rows: int, out_dir: Path, chunk: int) -> dict:
    """Run one measurement in a subprocess; returns its figures."""
    out = out_dir / f"{kind}-{family}-{rows}.parquet"
    cmd = [sys.executable, __file__, "--worker", kind, "--family", family, "--n", str(rows)]
    cmd += ["--out", str(out), "--chunk", str(chunk)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{kind} {family} {rows} failed:\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    out.unlink(missing_ok=True)
    label = "naive" if kind == "naive" else "streamed"
    return {"label": label, "family": family, "rows": rows, **result}


def sizes(text: str) -> list[int]:
    return [int(float(part)) for part in text.split(",") if part.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=sizes, help="fraud_detection sizes (default 1M,10M)")
    parser.add_argument("--family-rows", type=int, help="rows per family (default 1M)")
    parser.add_argument("--baseline-rows", type=int, help="rows of the naive run (default 1M)")
    parser.add_argument("--chunk-rows", type=int, default=250_000)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    parser.add_argument("--out-dir", type=Path, help="scratch directory (default: a temp dir)")
    parser.add_argument("--worker", choices=["generate", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--family", default="fraud_detection", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--chunk", type=int, default=250_000, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    small = 100_000 if args.quick else 1_000_000
    fraud_rows = args.rows or ([100_000, 1_000_000] if args.quick else [1_000_000, 10_000_000])
    family_rows = args.family_rows or small
    baseline_rows = args.baseline_rows or small
    console = Console(width=max(100, Console().width))
    with tempfile.TemporaryDirectory(dir=args.out_dir) as scratch:
        runs = []
        plan = [("generate", "fraud_detection", n) for n in fraud_rows]
        plan += [("generate", f, family_rows) for f in FAMILIES if f != "fraud_detection"]
        if family_rows not in fraud_rows:
            plan.append(("generate", "fraud_detection", family_rows))
        plan.append(("naive", "fraud_detection", baseline_rows))
        for kind, family, rows in plan:
            console.print(f"running {kind} {family} {rows:,} rows…", style="dim")
            runs.append(measure(kind, family, rows, Path(scratch), args.chunk_rows))

    table = Table("method", "family", "rows", "seconds", "rows/s", "peak RSS MB", "file MB")
    for run in runs:
        table.add_row(
            run["label"],
            run["family"],
            f"{run['rows']:,}",
            f"{run['seconds']:.2f}",
            f"{run['rows'] / run['seconds']:,.0f}",
            f"{run['peak_mb']:,.0f}",
            f"{run['file_mb']:,.1f}",
        )
    console.print(table)
    floor = min(run["floor_mb"] for run in runs)
    console.print(f"process floor (interpreter + imports): {floor:,.0f} MB")
    fraud = sorted(
        (r for r in runs if r["family"] == "fraud_detection" and r["label"] == "streamed"),
        key=lambda r: r["rows"],
    )
    if len(fraud) >= 2:
        lo, hi = fraud[0], fraud[-1]
        console.print(
            f"peak memory {hi['rows']:,} / {lo['rows']:,} rows: "
            f"{hi['peak_mb'] / lo['peak_mb']:.2f}x for {hi['rows'] / lo['rows']:.0f}x the rows"
        )
    naive = next(r for r in runs if r["label"] == "naive")
    same = next((r for r in fraud if r["rows"] == naive["rows"]), None)
    if same:
        console.print(
            f"vs naive pandas at {naive['rows']:,} rows: streamed is "
            f"{naive['seconds'] / same['seconds']:.1f}x faster and peaks at "
            f"{same['peak_mb']:,.0f} MB against {naive['peak_mb']:,.0f} MB "
            f"({naive['peak_mb'] / same['peak_mb']:.1f}x less); the naive data has no fraud "
            "bursts, daily cycle or drift, and its memory grows with rows"
        )


if __name__ == "__main__":
    main()
