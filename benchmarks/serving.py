"""Benchmark online scoring: riskops against mlflow, Seldon MLServer and a bare floor.

Same model (LightGBM, 200 trees x 30 numeric features, 31 leaves, seeded synthetic data) and the
same load for every contender: single-record JSON requests from `wrk` (2 threads, 8 connections,
fixed duration, a Lua script rotating through pre-generated bodies), after a warm-up. Each
contender runs alone, in its own process group, stopped on exit. Every body is first sent once
and the answer checked against booster.predict. Prints req/s, p50, p99, the ratios and the
issue-8 targets; writes the figures to .riskops/bench/serving.json.

    python benchmarks/serving.py                 # 3 s warm-up + 15 s per endpoint
    python benchmarks/serving.py --quick         # 2 s + 5 s
    python benchmarks/serving.py --only floor,mlserver --mlserver-workers 1
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from servebench import contenders as c
from servebench.cpu import CpuMeter
from servebench.load import LoadSettings, run_wrk, write_script, wrk_binary
from servebench.model import (
    N_FEATURES,
    N_LEAVES,
    N_TREES,
    BenchModel,
    train_bench_model,
)
from servebench.processes import Server
from servebench.report import print_table, target_checks
from servebench.verify import verify_target

ROOT = Path(__file__).resolve().parents[1]
BUSY_SHARE = 0.10  # other processes above this share of the machine: the run is flagged
CONTENDERS = ("floor", "mlflow", "mlserver", "riskops")
SHARED_CORES = (
    "wrk's 2 threads share the machine's {cpus} cores with the server under test: the figures "
    "are what one server gets while its load generator runs beside it, not a dedicated box."
)


CHOICES = """\
choices (the same for every contender unless said):
  - one server process each: uvicorn 1 worker for the floor, mlflow (its default) and riskops;
    MLServer parallel_workers={workers} ({workers_why}).
  - OMP_NUM_THREADS={omp} for every server: LightGBM's predict otherwise starts a team of
    OpenMP threads per call when the caller passes no num_threads (mlflow and MLServer do not;
    the floor and riskops pass num_threads=1). On 2 cores shared with wrk that made MLServer swing
    between 105 and 1,431 req/s from run to run; one thread per single-row call is what a careful
    operator sets. --omp-threads 0 measures the library default.
  - MLServer debug=false (its default logs every request); metrics and gzip as shipped.
"""
WORKERS_WHY = {
    0: "inference in the server's event loop; measured best on 2 cores: 1 or 2 worker "
    "processes add an IPC hop per request and have no idle core to run on",
}


def _terminate(_signum: int, _frame: object) -> None:
    raise SystemExit("interrupted: stopping the servers")


def _build(name: str, work: Path, model: BenchModel, args: argparse.Namespace) -> c.Contender:
    if name == "floor":
        return c.floor(work, model, args.riskops_src, args.omp_threads)
    if name == "mlflow":
        return c.mlflow_serve(work, model, args.riskops_src, args.omp_threads)
    if name == "mlserver":
        return c.mlserver(
            work,
            model,
            args.riskops_src,
            args.omp_threads,
            args.mlserver_venv,
            args.mlserver_workers,
        )
    return c.riskops(work, model, args.riskops_src, args.omp_threads)


def _measure(url: str, script: Path, pgid: int, load: LoadSettings, out: Path, label: str) -> dict:
    """One measured wrk run with the machine's CPU shares; prints a line, saves wrk's output."""
    meter = CpuMeter(pgid)
    result, output = run_wrk(url, script, load.seconds, load)
    cpu = meter.stop()
    out.write_text(output)
    busy = cpu.other > BUSY_SHARE
    print(
        f"  · {label}: {result.requests_per_second:,.0f} req/s, "
        f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
        f"{result.failed} failed; CPU: server {cpu.server:.0%}, wrk "
        f"{cpu.load_generator:.0%}, other processes {cpu.other:.0%} of the machine"
        + ("  <- BUSY MACHINE: figures unreliable" if busy else ""),
        flush=True,
    )
    return {**result.as_dict(), "cpu_share": cpu.as_dict(), "busy_machine": busy}


def run_contender(
    contender: c.Contender, model: BenchModel, work: Path, load: LoadSettings, repeat: int
) -> dict[str, dict]:
    """Start one contender, check its answers, warm it up, measure each of its endpoints.

    With ``repeat`` > 1 each endpoint is measured that many times and the run with the median
    req/s is reported (every run is kept under ``runs``).
    """
    results: dict[str, dict] = {}
    log = work / "logs" / f"{contender.key}.log"
    with Server(
        contender.label, contender.command, env=contender.env, cwd=contender.cwd, log=log
    ) as server:
        ready = server.wait_ready(contender.url(contender.ready_path), contender.ready_timeout)
        print(f"  · {contender.label} ready in {ready:.1f} s (log {log})", flush=True)
        for target in contender.targets:
            url = contender.url(target.path)
            check = verify_target(url, target, model.expected)
            print(
                f"  · {target.label}: {check.matched}/{check.sent} answers 200 with "
                f"booster.predict's score"
                + (f"; first problem: {check.first_problem}" if check.first_problem else ""),
                flush=True,
            )
            script = write_script(work / "wrk", target.key, target.bodies, target.headers)
            run_wrk(url, script, load.warmup_seconds, load)
            runs = [
                _measure(url, script, server.process.pid, load,
                         work / "wrk" / f"{target.key}.{i}.out", target.label)
                for i in range(repeat)
            ]  # fmt: skip
            median = sorted(runs, key=lambda run: run["requests_per_second"])[(repeat - 1) // 2]
            results[target.key] = {
                "label": target.label,
                "contender": contender.key,
                "url": url,
                "verification": check.as_dict(),
                **median,
                "runs": runs if repeat > 1 else [],
                "notes": contender.notes,
            }
    return results


def _versions(args: argparse.Namespace) -> dict[str, str]:
    import lightgbm
    import mlflow
    import uvicorn

    wrk = subprocess.run([wrk_binary(), "--version"], capture_output=True, text=True)
    found = {
        "python": platform.python_version(),
        "lightgbm": lightgbm.__version__,
        "mlflow": mlflow.__version__,
        "uvicorn": uvicorn.__version__,
        "wrk": (wrk.stdout + wrk.stderr).split("\n")[0].strip(),
    }
    mlserver_python = args.mlserver_venv / "bin" / "python"
    if mlserver_python.exists():
        probe = "import mlserver, lightgbm; print(mlserver.__version__, lightgbm.__version__)"
        out = subprocess.run([str(mlserver_python), "-c", probe], capture_output=True, text=True)
        if out.returncode == 0:
            found["mlserver"], found["lightgbm_in_mlserver_venv"] = out.stdout.split()
    return found


def main() -> None:
    """Parse the options, train the model, run every contender, print and save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15, help="measured seconds per endpoint")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up seconds per endpoint")
    parser.add_argument("--quick", action="store_true", help="2 s warm-up + 5 s measured")
    parser.add_argument(
        "--repeat", type=int, default=1, help="measured runs per endpoint; the median is reported"
    )
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--bodies", type=int, default=400, help="distinct request bodies")
    parser.add_argument("--train-rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--only",
        default=",".join(CONTENDERS),
        help=f"comma-separated subset of {','.join(CONTENDERS)}",
    )
    parser.add_argument(
        "--mlserver-workers",
        type=int,
        default=0,
        help="MLServer parallel_workers (0: inference in its event loop)",
    )
    parser.add_argument(
        "--omp-threads",
        type=int,
        default=1,
        help="OMP_NUM_THREADS for every server (0: library default; see CHOICES)",
    )
    parser.add_argument(
        "--riskops-src",
        type=Path,
        default=ROOT / "src",
        help="riskops source tree to serve (default: this checkout's src)",
    )
    parser.add_argument("--mlserver-venv", type=Path, default=ROOT / ".riskops/bench/mlserver-venv")
    parser.add_argument("--out", type=Path, default=ROOT / ".riskops/bench/serving.json")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(CONTENDERS))
    if unknown:
        parser.error(f"--only: unknown contender(s) {unknown}; choose from {list(CONTENDERS)}")
    load = LoadSettings(
        threads=args.threads,
        connections=args.connections,
        warmup_seconds=2 if args.quick else args.warmup,
        seconds=5 if args.quick else args.seconds,
    )
    wrk_binary()
    args.riskops_src = args.riskops_src.resolve()
    sys.path.insert(0, str(args.riskops_src))  # before any installed riskops
    signal.signal(signal.SIGTERM, _terminate)

    work = ROOT / ".riskops/bench/serving-run"
    shutil.rmtree(work, ignore_errors=True)
    (work / "wrk").mkdir(parents=True)
    began = time.perf_counter()
    model = train_bench_model(args.seed, args.train_rows, args.bodies)
    shares = model.band_shares()
    print(
        f"model: {N_TREES} trees x {N_FEATURES} numeric features, {N_LEAVES} leaves, seed "
        f"{args.seed}, trained on {args.train_rows:,} synthetic rows in "
        f"{time.perf_counter() - began:.1f} s"
    )
    print(
        f"decision cut-offs (training-score p80 / p90): approve below {model.approve_below}, "
        f"decline at or above {model.decline_at_or_above}"
    )
    print(
        f"request bodies: {args.bodies}; realised shares: approve {shares['approve']:.1%}, "
        f"refer {shares['refer']:.1%}, decline {shares['decline']:.1%}"
    )
    print(
        f"load: wrk {load.threads} threads, {load.connections} connections, "
        f"{load.warmup_seconds} s warm-up + {load.seconds} s measured per endpoint"
        + (f", {args.repeat} runs (median reported)" if args.repeat > 1 else "")
    )
    print(SHARED_CORES.format(cpus=os.cpu_count()))
    workers = args.mlserver_workers
    why = WORKERS_WHY.get(workers, "chosen with --mlserver-workers")
    print(
        CHOICES.format(workers=workers, workers_why=why, omp=args.omp_threads or "unset"),
        flush=True,
    )

    results: dict[str, dict] = {}
    unavailable: dict[str, str] = {}
    for name in chosen:
        print(f"{name}:", flush=True)
        try:
            contender = _build(name, work, model, args)
            results.update(run_contender(contender, model, work, load, args.repeat))
        except c.Unavailable as why:
            unavailable[name] = str(why)
            print(f"{name}: not available ({why})", flush=True)
        except (RuntimeError, ValueError, OSError) as error:
            unavailable[name] = f"failed: {error}"
            print(f"{name}: FAILED: {error}", flush=True)

    print_table(results)
    checks = target_checks(results)
    for line in checks:
        print(f"{line['verdict']}: {line['text']}")
    print("\n" + SHARED_CORES.format(cpus=os.cpu_count()))
    figures = {
        "model": {
            "trees": N_TREES,
            "features": N_FEATURES,
            "leaves": N_LEAVES,
            "seed": args.seed,
            "train_rows": args.train_rows,
            "approve_below": model.approve_below,
            "decline_at_or_above": model.decline_at_or_above,
            "request_band_shares": shares,
            "bodies": args.bodies,
        },
        "load": {
            "tool": "wrk",
            "threads": load.threads,
            "connections": load.connections,
            "warmup_seconds": load.warmup_seconds,
            "seconds": load.seconds,
            "repeat": args.repeat,
            "single_record_requests": True,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "note": SHARED_CORES.format(cpus=os.cpu_count()),
        },
        "choices": {
            "omp_num_threads": args.omp_threads or None,
            "mlserver_parallel_workers": args.mlserver_workers,
        },
        "versions": _versions(args),
        "results": results,
        "unavailable": unavailable,
        "targets": checks,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    print(f"figures written to {args.out}")


if __name__ == "__main__":
    main()
