"""The closing table and the issue-8 targets, from the measured results."""

from __future__ import annotations

SCORE, SCORE_ONLY, FLOOR, MLSERVER = "riskops-score", "riskops-score-only", "floor", "mlserver"
MIN_VS_MLSERVER = 1.5
MAX_P99_MS = 5.0
MIN_VS_FLOOR = 0.5


def _problem(result: dict) -> str | None:
    """Why a measurement cannot be trusted, or None."""
    reasons = []
    if result["failed"]:
        reasons.append(f"{result['failed']} failed requests under load")
    if result.get("busy_machine"):
        reasons.append(f"other processes took {result['cpu_share']['other']:.0%} of the machine")
    if not result["verification"]["passed"]:
        v = result["verification"]
        reasons.append(f"only {v['matched']}/{v['sent']} answers matched booster.predict")
    return "; ".join(reasons) or None


def print_table(results: dict[str, dict]) -> None:
    """req/s, p50, p99, max, failures and the ratios to the floor and to MLServer."""
    floor = results.get(FLOOR, {}).get("requests_per_second")
    mlserver = results.get(MLSERVER, {}).get("requests_per_second")
    header = (
        f"{'endpoint':<42}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'failed':>8}{'x floor':>9}{'x MLServer':>11}  answers"
    )
    print("\n" + header + "\n" + "-" * len(header))
    for result in results.values():
        rate = result["requests_per_second"]
        vs_floor = f"{rate / floor:.3f}" if floor else "-"
        vs_mlserver = f"{rate / mlserver:.2f}" if mlserver else "-"
        v = result["verification"]
        answers = f"{v['matched']}/{v['sent']} ok" + ("" if v["passed"] else "  <- FLAGGED")
        flag = "  <- ERRORS" if result["failed"] else ""
        flag += "  <- BUSY MACHINE" if result.get("busy_machine") else ""
        print(
            f"{result['label']:<42}{rate:>9,.0f}{result['p50_ms']:>9.2f}"
            f"{result['p99_ms']:>9.2f}{result['max_ms']:>9.1f}{result['failed']:>8}"
            f"{vs_floor:>9}{vs_mlserver:>11}  {answers}{flag}"
        )
    print()


def _verdict(ok: bool, involved: list[dict]) -> tuple[str, str]:
    problems = [f"{r['label']}: {p}" for r in involved if (p := _problem(r))]
    if problems:
        return "FAIL", " [measurement flagged: " + "; ".join(problems) + "]"
    return ("PASS" if ok else "FAIL"), ""


def target_checks(results: dict[str, dict]) -> list[dict]:
    """The issue-8 serving targets as PASS / FAIL / NOT CHECKED lines."""
    lines: list[dict] = []

    def add(name: str, needs: list[str], text: str, ok: object) -> None:
        missing = [key for key in needs if key not in results]
        if missing:
            lines.append(
                {
                    "target": name,
                    "verdict": "NOT CHECKED",
                    "text": f"{text} (not measured: {', '.join(missing)})",
                }
            )
            return
        verdict, note = _verdict(
            bool(ok(*[results[k] for k in needs])), [results[k] for k in needs]
        )
        lines.append({"target": name, "verdict": verdict, "text": text + note})

    def ratio(a: str, b: str) -> str:
        if a in results and b in results:
            return f"{results[a]['requests_per_second'] / results[b]['requests_per_second']:.2f}x"
        return "?"

    add(
        "score_vs_mlserver",
        [SCORE, MLSERVER],
        f"riskops score path >= {MIN_VS_MLSERVER}x MLServer's req/s (measured "
        f"{ratio(SCORE, MLSERVER)})",
        lambda s, m: s["requests_per_second"] >= MIN_VS_MLSERVER * m["requests_per_second"],
    )
    p99 = results.get(SCORE, {}).get("p99_ms")
    add(
        "score_p99",
        [SCORE],
        f"riskops score path p99 <= {MAX_P99_MS:g} ms (measured "
        f"{'?' if p99 is None else f'{p99:.2f} ms'})",
        lambda s: s["p99_ms"] <= MAX_P99_MS,
    )
    add(
        "score_only_vs_floor",
        [SCORE_ONLY, FLOOR],
        f"riskops score-only path >= {MIN_VS_FLOOR}x the bare floor's req/s (measured "
        f"{ratio(SCORE_ONLY, FLOOR)})",
        lambda s, f: s["requests_per_second"] >= MIN_VS_FLOOR * f["requests_per_second"],
    )
    return lines
