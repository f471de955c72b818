"""Benchmark training: credit_scoring end to end through train_and_register on a real MLflow.

Generates the rows, builds the features the simple way (spec columns as-is), starts a temporary
MLflow server (SQLite + local artifacts), then times each phase of train_and_register: split,
LightGBM fit, benchmark (binned logistic) fit, metrics + plots, logging + registration.

    python benchmarks/training.py                 # 1M rows
    python benchmarks/training.py --quick         # 50k rows
    python benchmarks/training.py --rows 250000 --threads 2 --json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def peak_rss_mb() -> float:
    """This process's peak resident set size in MiB (Linux: ru_maxrss is in KiB)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_mlflow(home: Path) -> tuple[subprocess.Popen, str]:
    """A throwaway MLflow server in its own process group; returns it and its URI."""
    port = free_port()
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", f"sqlite:///{home / 'mlflow.db'}",
        "--artifacts-destination", str(home / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = (home / "server.log").open("wb")
    server = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=home, start_new_session=True
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"mlflow server exited:\n{(home / 'server.log').read_text()}")
        try:
            if httpx.get(f"{uri}/health", timeout=2).status_code == 200:
                return server, uri
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop_mlflow(server)
    raise SystemExit("mlflow server did not become healthy in 60 s")


def stop_mlflow(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=lambda s: int(float(s)), default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="50k rows")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, help="LightGBM num_threads (default: library's)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    rows = 50_000 if args.quick else args.rows

    import mlflow.tracking
    import pandas as pd

    from riskops.specs import load_spec
    from riskops.synthetic import generate
    from riskops.training.lineage import Lineage, git_commit
    from riskops.training.track import train_and_register

    spec = load_spec(ROOT / "models" / "credit-scoring.yaml")
    say = (lambda _m: None) if args.json else (lambda m: print(f"  · {m}", flush=True))
    floor = peak_rss_mb()
    with tempfile.TemporaryDirectory(prefix="riskops-bench-train-") as scratch:
        folder = Path(scratch)
        began = time.perf_counter()
        data = folder / "credit.parquet"
        generate("credit_scoring", rows, args.seed, data, progress=False)
        features = pd.read_parquet(data)
        for name in spec.features.numeric:
            features[name] = features[name].astype("float64")
        for name in spec.features.categorical:
            column = features[name].astype("object")
            features[name] = column.where(column.notna(), "__missing__")
        prepare_seconds = time.perf_counter() - began
        loaded_mb = peak_rss_mb()
        say(f"{rows:,} rows generated and loaded in {prepare_seconds:.1f} s")

        (folder / "mlflow").mkdir()
        server, uri = start_mlflow(folder / "mlflow")
        try:
            client = mlflow.tracking.MlflowClient(tracking_uri=uri, registry_uri=uri)
            lineage = Lineage(
                dataset_version=f"credit-scoring-bench-{rows}",
                dataset_sha256="0" * 64,
                featureset_version="bench",
                featureset_uri=data.as_uri(),
                spec_hash=spec.spec_hash(),
                definitions_hash="0" * 64,
                code_version=git_commit(ROOT),
                trainer="benchmark",
            )
            overrides = {"num_threads": args.threads} if args.threads else None
            # MLflow prints run links on stdout; keep stdout for the figures under --json.
            quiet = (
                contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
            )
            with quiet:
                result = train_and_register(
                    client=client,
                    spec=spec,
                    features=features,
                    numeric=list(spec.features.numeric),
                    categorical=list(spec.features.categorical),
                    lineage=lineage,
                    seed=args.seed,
                    progress=say,
                    lightgbm_params=overrides,
                )
        finally:
            stop_mlflow(server)

    m, b = result.metrics, result.benchmark_metrics or {}
    figures = {
        "rows": rows,
        "train_rows": result.train_rows,
        "holdout_rows": result.holdout_rows,
        "generate_and_load_seconds": round(prepare_seconds, 2),
        "phases_seconds": result.phases,
        "train_and_register_seconds": result.seconds,
        "best_iteration": m.get("best_iteration"),
        "holdout_auc": round(m["holdout_auc"], 4),
        "holdout_ks": round(m["holdout_ks"], 4),
        "benchmark_holdout_auc": round(b.get("holdout_auc", float("nan")), 4),
        "peak_rss_mb": {
            "imports": round(floor),
            "data_loaded": round(loaded_mb),
            "end": round(peak_rss_mb()),
        },
        "lightgbm_threads": args.threads or "default",
        "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    print(f"\ncredit_scoring, {rows:,} rows ({result.train_rows:,} train / "
          f"{result.holdout_rows:,} holdout), version {result.version}")  # fmt: skip
    for name, seconds in (result.phases or {}).items():
        print(f"  {name:<22}{seconds:>9.2f} s")
    print(f"  {'total':<22}{result.seconds:>9.2f} s")
    bench_auc = b.get("holdout_auc", float("nan"))
    print(f"  LightGBM trees {m.get('best_iteration'):.0f}; holdout AUC {m['holdout_auc']:.4f} "
          f"(benchmark {bench_auc:.4f}), KS {m['holdout_ks']:.4f}")  # fmt: skip
    peaks = figures["peak_rss_mb"]
    print(f"  peak RSS: {peaks['imports']} MB after imports, {peaks['data_loaded']} MB with the "
          f"data loaded, {peaks['end']} MB at the end")  # fmt: skip


if __name__ == "__main__":
    main()
