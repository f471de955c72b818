"""Benchmark drift monitoring: riskops vs Evidently 0.7.23 vs whylogs as shipped, same frames.

    python benchmarks/monitoring.py                    # 1M rows x 20 columns; 10M rows chunked
    python benchmarks/monitoring.py --rows 200000 --big-rows 2000000   # a quicker run

One run writes a reference frame and a shifted copy (15 numeric columns, 5 categorical with 12
values; 4 numeric and 2 categorical columns move) to parquet, then runs each contender in its own
subprocess on those files: profile both frames and compare them.

- riskops: :func:`riskops.monitoring.profile_chunks` + :func:`compare_profiles` (project venv);
- Evidently 0.7.23: ``Report([DataDriftPreset()]).run(current, reference)`` in its own venv
  (``--evidently-venv``, built on first use: Evidently does not import with pandas 3 and is not
  a dependency of riskops);
- whylogs 1.6.4 as shipped: ``why.log(df).view()`` per frame and ``whylogs.viz``'s
  ``calculate_drift_scores`` in its own venv (whylogs.viz imports IPython).

Time is measured inside each child (parquet reading excluded); peak memory is the child's peak
RSS as the kernel reports it (``os.wait4``), frames included, so the figure is what a monitoring
job needs. Then: the compare-only time of two stored profiles (deserialize + compare), and the
chunked profile of 1M and ``--big-rows`` rows generated chunk by chunk (flat memory).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from monitoringbench import data  # noqa: E402
from monitoringbench.venvs import EVIDENTLY, WHYLOGS_VIZ, Unavailable, ensure_venv  # noqa: E402

TARGET_SPEEDUP = 10.0
TARGET_MEMORY_RATIO = 0.5
TARGET_COMPARE_MS = 100.0


def run_child(python: Path, script: Path, args: list[str], work: Path, name: str) -> dict:
    """Run one contender; its JSON result plus its peak RSS (MiB) and wall time."""
    out = work / f"{name}.json"
    log = work / f"{name}.log"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(HERE)])}
    env.setdefault("OMP_NUM_THREADS", "2")
    start = time.perf_counter()
    with open(log, "w") as handle:
        child = subprocess.Popen(
            [str(python), str(script), *args, "--out", str(out)],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    if child.returncode != 0:
        raise Unavailable(f"{name} failed (exit {child.returncode}):\n{log.read_text()[-3000:]}")
    result = json.loads(out.read_text())
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux: KiB
    result["wall_seconds"] = wall
    return result


def _line(name: str, r: dict) -> str:
    return (
        f"{name:<28} {r['seconds']:>8.2f} s  (profile {r['profile_seconds']:.2f} s, "
        f"compare {r['compare_seconds'] * 1000:.0f} ms)  peak RSS {r['peak_rss_mb']:>6.0f} MiB  "
        f"(frames loaded: {r['rss_after_load_mb']:.0f} MiB)  drifted: {len(r['drifted'])}"
    )


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=10_000_000)
    parser.add_argument("--chunk-rows", type=int, default=500_000)
    parser.add_argument(
        "--evidently-venv", type=Path, default=ROOT / ".riskops/bench/evidently-venv"
    )
    parser.add_argument(
        "--whylogs-venv", type=Path, default=ROOT / ".riskops/bench/whylogs-viz-venv"
    )
    parser.add_argument("--skip-evidently", action="store_true")
    parser.add_argument("--skip-whylogs", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="riskops-monbench-") as tmp:
        work = Path(tmp)
        ref, cur = work / "reference.parquet", work / "current.parquet"
        print(f"writing {args.rows:,} rows x {len(data.NUMERIC) + len(data.CATEGORICAL)} columns")
        data.frame(args.rows, seed=1).to_parquet(ref)
        data.frame(args.rows, seed=2, shifted=True).to_parquet(cur)
        moved = sorted(data.SHIFTED_NUMERIC + data.SHIFTED_CATEGORICAL)
        files = ["--ref", str(ref), "--cur", str(cur)]

        ours_script = HERE / "monitoringbench" / "child_ours.py"
        results["riskops"] = run_child(
            Path(sys.executable), ours_script, ["compare", *files], work, "riskops"
        )
        contenders = [
            ("evidently", args.skip_evidently, args.evidently_venv, EVIDENTLY, "child_evidently"),
            ("whylogs", args.skip_whylogs, args.whylogs_venv, WHYLOGS_VIZ, "child_whylogs"),
        ]
        for name, skip, venv, packages, script in contenders:
            if skip:
                continue
            try:
                python = ensure_venv(venv, packages)
                script_path = HERE / "monitoringbench" / f"{script}.py"
                results[name] = run_child(python, script_path, files, work, name)
            except Unavailable as exc:
                print(f"  ! {name} skipped: {exc}")

        for rows in (1_000_000, args.big_rows):
            results[f"chunked_{rows}"] = run_child(
                Path(sys.executable),
                ours_script,
                ["chunked", "--rows", str(rows), "--chunk-rows", str(args.chunk_rows)],
                work,
                f"chunked-{rows}",
            )

    ours = results["riskops"]
    print(f"\nprofile + compare, {args.rows:,} rows x 20 columns, reference vs shifted copy")
    print(f"  (columns that moved: {len(moved)})")
    print(_line("riskops", ours))
    for name in ("evidently", "whylogs"):
        if name in results:
            print(
                _line(
                    {"evidently": "Evidently DataDriftPreset", "whylogs": "whylogs why.log+viz"}[
                        name
                    ],
                    results[name],
                )
            )
    print(f"  riskops drifted: {ours['drifted']}")
    for name in ("evidently", "whylogs"):
        if name in results:
            r = results[name]
            print(f"  {name} drifted ({len(r['drifted'])}): {r['drifted']}")

    print("\nratios (contender / riskops)")
    verdicts = []
    for name in ("evidently", "whylogs"):
        if name in results:
            r = results[name]
            speed = r["seconds"] / ours["seconds"]
            memory = ours["peak_rss_mb"] / r["peak_rss_mb"]
            print(f"  {name:<10} time x{speed:.1f}   riskops peak RSS = {memory:.2f} of {name}'s")
            if name == "evidently":
                verdicts.append(
                    (f">= {TARGET_SPEEDUP:.0f}x faster than Evidently", speed >= TARGET_SPEEDUP)
                )
                verdicts.append(
                    (
                        f"<= {TARGET_MEMORY_RATIO} of Evidently's peak memory",
                        memory <= TARGET_MEMORY_RATIO,
                    )
                )
    compare_ms = ours["stored_compare_seconds"] * 1000
    print(
        f"\ncompare-only, two stored profiles ({ours['profile_bytes'][0] / 1024:.0f} KiB each): "
        f"deserialize both + compare {compare_ms:.1f} ms (best of 5; compare alone "
        f"{ours['compare_seconds'] * 1000:.0f} ms)"
    )
    verdicts.append(
        (f"compare-only <= {TARGET_COMPARE_MS:.0f} ms", compare_ms <= TARGET_COMPARE_MS)
    )
    print("\nchunked profile (generated chunk by chunk, 20 columns)")
    for rows in (1_000_000, args.big_rows):
        r = results[f"chunked_{rows}"]
        print(
            f"  {rows:>12,} rows: profiling {r['seconds']:6.1f} s "
            f"({rows / r['seconds'] / 1e6:.2f} M rows/s; generating the data took "
            f"{r['generate_seconds']:.1f} s more)  peak RSS {r['peak_rss_mb']:.0f} MiB"
        )
    small, big = results["chunked_1000000"], results[f"chunked_{args.big_rows}"]
    flat = big["peak_rss_mb"] <= small["peak_rss_mb"] * 1.25
    verdicts.append(("flat memory (10M peak RSS within 25% of 1M)", flat))
    print("\ntargets")
    for label, ok in verdicts:
        print(f"  {_verdict(ok)}  {label}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
