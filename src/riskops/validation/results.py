"""What a gate returns (:class:`GateResult`) and the collected verdict (:class:`GateReport`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

ScoreFn = Callable[[pd.DataFrame], np.ndarray]
"""Frame of model inputs → positive-class (bad outcome) probability per row."""

ContribFn = Callable[[pd.DataFrame], pd.DataFrame]
"""Frame of model inputs → per-feature contributions (columns = features; > 0 raises the score)."""

Comparison = Literal[">=", "<="]


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars, arrays, paths and non-finite floats made JSON-safe."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray, pd.Index)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) else None
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, str):
        return value
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.4g}"


@dataclass(frozen=True)
class GateResult:
    """One gate's verdict: the measured value against its threshold, with evidence."""

    name: str
    passed: bool
    value: float | None
    threshold: float | None
    comparison: Comparison
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    plots: list[Path] = field(default_factory=list)
    # Not measured: does not block (``passed`` is True) but is never reported as ``pass``. For a
    # high-risk model :func:`~riskops.validation.policy.apply_waivers` turns an unmeasured gate
    # into a failure unless the spec waives it.
    skipped: bool = False
    not_applicable: bool = False  # nothing to measure by design (no champion yet): never fails
    waiver: str | None = None  # the spec's written reason, when a waiver let it through

    @property
    def status(self) -> str:
        """``pass``, ``FAIL``, ``skipped`` or ``waived`` (not measured, waived by the spec)."""
        if self.waiver is not None:
            return "waived"
        if self.skipped:
            return "skipped"
        return "pass" if self.passed else "FAIL"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return jsonable(
            {
                "name": self.name,
                "passed": self.passed,
                "status": self.status,
                "skipped": self.skipped,
                "not_applicable": self.not_applicable,
                "waiver": self.waiver,
                "value": self.value,
                "threshold": self.threshold,
                "comparison": self.comparison,
                "message": self.message,
                "evidence": self.evidence,
                "plots": self.plots,
            }
        )


def measured(
    name: str,
    value: float,
    threshold: float,
    comparison: Comparison,
    what: str,
    *,
    why: str = "",
    evidence: Mapping[str, Any] | None = None,
    plots: Sequence[Path] = (),
) -> GateResult:
    """A threshold gate: passes when ``value comparison threshold``; writes the sentence."""
    value = float(value)
    ok = math.isfinite(value) and (value >= threshold if comparison == ">=" else value <= threshold)
    word = "at least" if comparison == ">=" else "at most"
    verdict = "passes" if ok else "fails"
    message = f"{what} is {_fmt(value)}, required {word} {_fmt(threshold)}: {verdict}"
    message += f" ({why})." if why else "."
    return GateResult(
        name=name,
        passed=ok,
        value=value,
        threshold=float(threshold),
        comparison=comparison,
        message=message,
        evidence=dict(evidence or {}),
        plots=list(plots),
    )


def skipped(
    name: str,
    message: str,
    *,
    threshold: float | None = None,
    comparison: Comparison = ">=",
    evidence: Mapping[str, Any] | None = None,
) -> GateResult:
    """A gate that could not be measured, with the reason as its message.

    It does not block a limited- or minimal-risk model; for a high-risk one it fails unless
    the spec waives it (see :mod:`riskops.validation.policy`).
    """
    return GateResult(
        name, True, None, threshold, comparison, message, dict(evidence or {}), skipped=True
    )


def not_applicable(name: str, message: str, *, comparison: Comparison = ">=") -> GateResult:
    """A gate with nothing to measure by design (e.g. no champion yet): never fails."""
    return GateResult(
        name, True, None, None, comparison, message, skipped=True, not_applicable=True
    )


def crashed(name: str, error: BaseException) -> GateResult:
    """A gate whose measurement raised: failed, with the error as evidence."""
    text = f"{type(error).__name__}: {error}"
    return GateResult(
        name, False, None, None, ">=", f"the check raised {text[:300]}", {"error": text[:2000]}
    )


@dataclass(frozen=True)
class GateReport:
    """All gate results of one validation; it passes when every gate passed."""

    results: tuple[GateResult, ...]
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when no gate failed (skipped and waived gates do not block)."""
        return all(result.passed for result in self.results)

    @property
    def failed(self) -> list[str]:
        """Names of the gates that failed, in run order."""
        return [result.name for result in self.results if not result.passed]

    @property
    def failed_groups(self) -> list[str]:
        """Gate families with a failure (``discrimination`` for ``discrimination.auc``)."""
        return list(dict.fromkeys(name.split(".", 1)[0] for name in self.failed))

    @property
    def plots(self) -> list[Path]:
        """Every plot written by any gate."""
        return [path for result in self.results for path in result.plots]

    def get(self, name: str) -> GateResult:
        """The result named ``name``; KeyError when no gate has that name."""
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(f"no gate named {name!r}; gates: {[r.name for r in self.results]}")

    def with_status(self, status: str) -> list[str]:
        """Names of the gates whose :attr:`GateResult.status` is ``status``, in run order."""
        return [result.name for result in self.results if result.status == status]

    def names(self) -> list[str]:
        """Gate names in run order."""
        return [result.name for result in self.results]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: overall verdict, failed names, context and each result."""
        return jsonable(
            {
                "passed": self.passed,
                "failed": self.failed,
                "skipped": self.with_status("skipped"),
                "waived": {r.name: r.waiver for r in self.results if r.waiver is not None},
                "context": self.context,
                "results": [result.to_dict() for result in self.results],
            }
        )

    def to_table_rows(self) -> list[dict[str, Any]]:
        """One flat dict per gate (gate, status, value, threshold, message): a Prefect table."""
        return [
            {
                "gate": r.name,
                "status": r.status,
                "value": None if r.value is None else jsonable(round(r.value, 6)),
                "comparison": r.comparison if r.threshold is not None else "",
                "threshold": r.threshold,
                "message": r.message,
                "waiver": r.waiver or "",
            }
            for r in self.results
        ]

    def to_markdown(self) -> str:
        """A Markdown summary line and a table: gate, value, threshold, pass/fail, message."""
        verdict = "PASSED" if self.passed else f"FAILED ({', '.join(self.failed)})"
        counts = {s: len(self.with_status(s)) for s in ("pass", "FAIL", "skipped", "waived")}
        tally = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        lines = [f"**Validation {verdict}**: {len(self.results)} gates ({tally}).", ""]
        for r in self.results:
            if r.waiver is not None:
                lines.append(f"- Waived by the spec: **{r.name}**: {r.waiver}")
        for unused in self.context.get("unused_waivers", []):
            lines.append(f"- Unused waiver **{unused['gate']}**: {unused['why']}")
        if lines[-1]:
            lines.append("")  # a blank line between the notes and the table
        lines += [
            "| gate | value | threshold | result | message |",
            "|---|---:|---:|---|---|",
        ]
        for r in self.results:
            threshold = f"{r.comparison} {_fmt(r.threshold)}" if r.threshold is not None else "—"
            message = r.message if r.waiver is None else f"{r.message} Waived: {r.waiver}"
            message = message.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {r.name} | {_fmt(r.value)} | {threshold} | {r.status} | {message} |")
        return "\n".join(lines) + "\n"
