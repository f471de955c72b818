"""Benchmark the Spark feature build against the plain-pandas script a user would write first.

Every run happens in its own subprocess. A Spark run reports the seconds of the feature build
(session start-up apart), rows/s, the CPU seconds of the JVM, and the peak RSS of the driver's
Python process and of its JVM (sampled with psutil every 0.2 s). The pandas baseline (groupby +
rolling time windows, ``closed="left"``, a lambda for distinct merchants, hashlib per id)
computes the same fraud features and writes them partitioned by day, like the Spark build.

    python benchmarks/feature_build.py            # Spark on 1M and 10M rows, pandas on 1M
    python benchmarks/feature_build.py --quick    # smoke run: 100k rows
    python benchmarks/feature_build.py --rows 2000000 --baseline-rows 0 --driver-memory 4g
    python benchmarks/feature_build.py --startup-only  # local session vs Spark Connect, 20k rows

Start-up: what one flow run pays for a small (20k-row) feature build, as the wall time of a
whole worker process (Python start, imports, the session, the build, the stop), once with a
session-local Spark (a JVM per process) and once as a client of a Spark Connect server that
this benchmark starts beforehand (as `riskops up` does; its own start-up is printed apart).
Both use the same ``--master`` and ``--driver-memory``. The first Connect run on a fresh server
also pays the server's warm-up (JIT, Python workers), so each is repeated (``--repeat``).

The JVM's heap grows up to ``--driver-memory`` whatever the data size (sorts spill beyond it),
so its peak RSS is bounded by that setting plus ~0.5 GB of JVM overhead, not by the rows.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

SPEC = Path(__file__).resolve().parents[1] / "models" / "fraud-detection.yaml"
FAMILY = "fraud_detection"


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class TreeSampler:
    """Samples the RSS of this process and of its JVM child in a thread.

    Only processes named ``java`` count: the JVM forks short-lived helpers (Hadoop's local
    file system runs ``chmod`` for every file it creates), and a fork's RSS is the parent's
    pages, shared, which would be counted twice.
    """

    def __init__(self, every: float = 0.2) -> None:
        import psutil

        self.me = psutil.Process()
        self.every = every
        self.peak_python = 0.0
        self.peak_jvm = 0.0
        self.jvm_cpu = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        import psutil

        self.peak_python = max(self.peak_python, self.me.memory_info().rss / 2**20)
        rss = cpu = 0.0
        for child in self.me.children(recursive=True):
            try:
                if child.name() != "java":
                    continue
                rss += child.memory_info().rss
                times = child.cpu_times()
                cpu += times.user + times.system
            except psutil.NoSuchProcess:
                continue
        self.peak_jvm = max(self.peak_jvm, rss / 2**20)
        self.jvm_cpu = max(self.jvm_cpu, cpu)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.every)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


def spark_worker(args: argparse.Namespace) -> dict:
    """Build the feature set of ``args.data`` with Spark (local[*])."""
    from riskops.features.featureset import build_feature_set
    from riskops.features.session import spark_session
    from riskops.specs import load_spec

    spec = load_spec(SPEC)
    out = Path(args.out)
    with TreeSampler() as sampler:
        began = time.perf_counter()
        with spark_session(
            args.master, driver_memory=args.driver_memory, remote=args.remote
        ) as spark:
            started = time.perf_counter()
            cpu_at_start = sampler.jvm_cpu
            manifest = build_feature_set(
                spark, Path(args.data), out, spec,
                dataset_version=f"bench-{args.n}", dataset_sha256="0" * 64,
                code_version="bench", pseudonym_key="bench-key",
            )  # fmt: skip
            seconds = time.perf_counter() - started
    files = list((out / "data").rglob("*.parquet"))
    return {
        "seconds": seconds,
        "startup": started - began,
        "rows": manifest.row_count,
        "peak_python_mb": max(sampler.peak_python, peak_rss_mb()),
        "peak_jvm_mb": sampler.peak_jvm,
        "jvm_cpu_s": sampler.jvm_cpu - cpu_at_start,
        "files": len(files),
        "out_mb": sum(f.stat().st_size for f in files) / 2**20,
        "features": len(manifest.numeric_features) + len(manifest.categorical_features),
    }


def pandas_features(path: Path, out: Path) -> int:
    """The same fraud features the way a pandas user writes them: rolling time windows."""
    import hashlib

    import numpy as np
    import pandas as pd

    df = pd.read_parquet(path)
    df["log_amount"] = np.log1p(df["amount"])
    df["hour_of_day"] = df["event_time"].dt.hour
    df["day_of_week"] = df["event_time"].dt.dayofweek
    for key, label in (("card_id", "card"), ("merchant_id", "merchant")):
        df = df.sort_values([key, "event_time"], kind="stable").reset_index(drop=True)
        grouped = df.groupby(key, sort=False)
        for window in ("1h", "24h", "7d"):
            rolled = grouped.rolling(window, on="event_time", closed="left")["amount"]
            df[f"{label}_txn_count_{window}"] = rolled.count().fillna(0).to_numpy()
            df[f"{label}_amount_sum_{window}"] = rolled.sum().fillna(0).to_numpy()
            df[f"{label}_amount_max_{window}"] = rolled.max().to_numpy()
        if key == "card_id":
            df["merchant_code"] = df["merchant_id"].astype("category").cat.codes.astype(float)
            distinct = grouped.rolling("24h", on="event_time", closed="left")["merchant_code"]
            counts = distinct.apply(lambda x: len(np.unique(x)), raw=True)
            df["card_distinct_merchants_24h"] = counts.fillna(0).to_numpy()
            since = grouped["event_time"].diff().dt.total_seconds()
            df["card_seconds_since_previous"] = since.to_numpy()
    for column in ("mcc", "channel", "country", "entry_mode"):
        clean = df[column].str.strip().str.lower()
        counts = clean.value_counts()
        known = set(counts[counts >= 5].index[:200])
        df[column] = clean.where(clean.isin(known), "__unseen__").fillna("__missing__")
    df["card_id"] = [hashlib.sha256(("bench-key" + v).encode()).hexdigest() for v in df["card_id"]]
    df["event_date"] = df["event_time"].dt.date.astype(str)
    df = df.drop(columns=["merchant_id", "merchant_code"])
    df.to_parquet(out, partition_cols=["event_date"], index=False)
    return len(df)


def pandas_worker(args: argparse.Namespace) -> dict:
    """Run the pandas baseline and measure it."""
    floor = peak_rss_mb()
    began = time.perf_counter()
    rows = pandas_features(Path(args.data), Path(args.out))
    files = list(Path(args.out).rglob("*.parquet"))
    return {
        "seconds": time.perf_counter() - began,
        "startup": 0.0,
        "rows": rows,
        "peak_python_mb": peak_rss_mb(),
        "floor_mb": floor,
        "peak_jvm_mb": 0.0,
        "jvm_cpu_s": 0.0,
        "files": len(files),
        "out_mb": sum(f.stat().st_size for f in files) / 2**20,
        "features": 29,
    }


def measure(
    kind: str, rows: int, data: Path, scratch: Path, args: argparse.Namespace,
    remote: str | None = None,
) -> dict:  # fmt: skip
    """Run one measurement in a fresh subprocess; returns its figures (``wall``: the whole
    process, from its start to its exit)."""
    out = scratch / f"out-{kind}-{rows}"
    cmd = [sys.executable, __file__, "--worker", kind, "--n", str(rows), "--data", str(data)]
    cmd += ["--out", str(out), "--master", args.master, "--driver-memory", args.driver_memory]
    if remote:
        cmd += ["--remote", remote]
    load_before = os.getloadavg()[0]
    began = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - began
    load_after = os.getloadavg()[0]
    shutil.rmtree(out, ignore_errors=True)
    if done.returncode:
        raise SystemExit(f"{kind} {rows} failed:\n{done.stderr[-4000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {"kind": kind, "n": rows, "load": (load_before, load_after), "wall": wall, **result}


def compare_startup(console: Console, scratch: Path, args: argparse.Namespace) -> list[dict]:
    """The same small feature build in fresh processes: session-local Spark, then Connect."""
    from riskops.features.connect_server import ConnectServerConfig, local_connect_server
    from riskops.stack.ports import free_port
    from riskops.synthetic import generate

    rows = args.startup_rows
    data = scratch / f"fraud-startup-{rows}.parquet"
    generate(FAMILY, rows, 1, data, progress=False)
    runs = []
    for i in range(args.repeat):
        console.print(f"session-local Spark on {rows:,} rows, run {i + 1}…", style="dim")
        runs.append({**measure("spark", rows, data, scratch, args), "method": "local", "run": i})
    config = ConnectServerConfig(
        port=free_port(), master=args.master, driver_memory=args.driver_memory,
        work_dir=scratch / "connect",
    )  # fmt: skip
    began = time.perf_counter()
    with local_connect_server(config, scratch / "connect-logs") as url:
        server_up = time.perf_counter() - began
        console.print(
            f"Spark Connect server listening at {url} after {server_up:.1f} s", style="dim"
        )
        for i in range(args.repeat):
            console.print(f"Spark Connect client on {rows:,} rows, run {i + 1}…", style="dim")
            run = measure("spark", rows, data, scratch, args, remote=url)
            runs.append({**run, "method": "connect", "run": i, "server_up": server_up})
    data.unlink()
    return runs


def report_startup(console: Console, runs: list[dict]) -> None:
    table = Table("spark", "run", "wall s (process)", "session start s", "build s",
                  "peak RSS python MB", "peak RSS JVM MB (this process's)", "load avg")  # fmt: skip
    for run in runs:
        table.add_row(
            "session-local " if run["method"] == "local" else "Spark Connect",
            str(run["run"] + 1),
            f"{run['wall']:.1f}",
            f"{run['startup']:.1f}",
            f"{run['seconds']:.1f}",
            f"{run['peak_python_mb']:,.0f}",
            f"{run['peak_jvm_mb']:,.0f}",
            "{:.1f} → {:.1f}".format(*run["load"]),
        )
    console.print(table)
    local = [r["wall"] for r in runs if r["method"] == "local"]
    connect = [r for r in runs if r["method"] == "connect"]
    if not local or not connect:
        return
    server_up = connect[0]["server_up"]
    first, later = connect[0]["wall"], [r["wall"] for r in connect[1:]]
    mean_local = sum(local) / len(local)
    console.print(
        f"{runs[0]['rows']:,}-row feature build, whole process: session-local "
        f"{mean_local:.1f} s (mean of {len(local)}); Spark Connect {first:.1f} s on a fresh "
        f"server (ratio {mean_local / first:.1f}x)"
        + (
            f", {sum(later) / len(later):.1f} s once it is warm "
            f"(ratio {mean_local / (sum(later) / len(later)):.1f}x)"
            if later
            else ""
        )
        + f". The server itself took {server_up:.1f} s to start, once, before the runs."
    )


def sizes(text: str) -> list[int]:
    return [int(float(part)) for part in text.split(",") if part.strip()]


def report(console: Console, runs: list[dict]) -> None:
    table = Table("method", "rows", "seconds", "rows/s", "JVM CPU s", "peak RSS python MB",
                  "peak RSS JVM MB", "files", "out MB", "load avg")  # fmt: skip
    for run in runs:
        table.add_row(
            "spark local[*]" if run["kind"] == "spark" else "pandas rolling",
            f"{run['rows']:,}",
            f"{run['seconds']:.1f}",
            f"{run['rows'] / run['seconds']:,.0f}",
            f"{run['jvm_cpu_s']:.0f}" if run["kind"] == "spark" else "-",
            f"{run['peak_python_mb']:,.0f}",
            f"{run['peak_jvm_mb']:,.0f}" if run["kind"] == "spark" else "-",
            str(run["files"]),
            f"{run['out_mb']:,.1f}",
            "{:.1f} → {:.1f}".format(*run["load"]),
        )
    console.print(table)
    console.print(f"machine: {os.cpu_count()} cores; 'load avg' is the 1-minute load before and "
                  "after each run (other work on the machine slows the figures down)")  # fmt: skip
    spark = sorted((r for r in runs if r["kind"] == "spark"), key=lambda r: r["rows"])
    if spark:
        startup = sum(r["startup"] for r in spark) / len(spark)
        console.print(f"Spark session start-up (not counted above): {startup:.1f} s on average")
    if len(spark) >= 2:
        lo, hi = spark[0], spark[-1]
        console.print(
            f"{hi['rows']:,} vs {lo['rows']:,} rows ({hi['rows'] / lo['rows']:.0f}x): "
            f"{hi['seconds'] / lo['seconds']:.1f}x the time, peak JVM RSS "
            f"{hi['peak_jvm_mb'] / lo['peak_jvm_mb']:.2f}x, peak python RSS "
            f"{hi['peak_python_mb'] / lo['peak_python_mb']:.2f}x"
        )
    for base in (r for r in runs if r["kind"] == "pandas"):
        same = next((r for r in spark if r["rows"] == base["rows"]), None)
        if same:
            console.print(
                f"pandas vs Spark at {base['rows']:,} rows: pandas takes "
                f"{base['seconds'] / same['seconds']:.1f}x the time and peaks at "
                f"{base['peak_python_mb']:,.0f} MB (Spark: {same['peak_python_mb']:,.0f} MB "
                f"python + {same['peak_jvm_mb']:,.0f} MB JVM)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=sizes, help="Spark sizes (default 1M,10M)")
    parser.add_argument(
        "--baseline-rows", type=int, help="pandas baseline size (default 1M; 0: none)"
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 100k rows")
    parser.add_argument("--master", default="local[*]")
    parser.add_argument("--driver-memory", default="2g", help="spark.driver.memory (default 2g)")
    parser.add_argument("--out-dir", type=Path, help="scratch directory (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print the runs as JSON too")
    parser.add_argument(
        "--startup-rows", type=int, default=20_000,
        help="rows of the start-up comparison, local session vs Spark Connect (0: none)",
    )  # fmt: skip
    parser.add_argument("--repeat", type=int, default=2, help="runs of each start-up variant")
    parser.add_argument("--startup-only", action="store_true", help="only the start-up comparison")
    parser.add_argument("--remote", help=argparse.SUPPRESS)
    parser.add_argument("--worker", choices=["spark", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        work = spark_worker if args.worker == "spark" else pandas_worker
        print(json.dumps(work(args)))
        return

    from riskops.synthetic import generate

    spark_rows = args.rows or ([100_000] if args.quick else [1_000_000, 10_000_000])
    baseline = args.baseline_rows
    if baseline is None:
        baseline = 100_000 if args.quick else 1_000_000
    if args.startup_only:
        spark_rows, baseline = [], 0
    console = Console(width=max(110, Console().width))
    runs: list[dict] = []
    startup: list[dict] = []
    with tempfile.TemporaryDirectory(dir=args.out_dir, prefix="riskops-bench-") as tmp:
        scratch = Path(tmp)
        if args.startup_rows:
            startup = compare_startup(console, scratch, args)
        for rows in sorted({*spark_rows, baseline} - {0}):
            data = scratch / f"fraud-{rows}.parquet"
            console.print(f"generating {rows:,} {FAMILY} rows…", style="dim")
            generate(FAMILY, rows, 1, data, progress=False)
            kinds = (["spark"] if rows in spark_rows else []) + (["pandas"] * (rows == baseline))
            for kind in kinds:
                console.print(f"running {kind} on {rows:,} rows…", style="dim")
                runs.append(measure(kind, rows, data, scratch, args))
            data.unlink()
    if runs:
        report(console, runs)
    if startup:
        report_startup(console, startup)
    if args.json:
        print(json.dumps({"runs": runs, "startup": startup}, indent=2))


if __name__ == "__main__":
    main()
