"""The monitor's report: a table, markdown with PNG charts, and one self-contained HTML page.

Charts: PSI over the recent windows per feature (from the ``drift_result`` rows), and the score
distribution of the window against the reference (the prediction comparison's bins).
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
from collections.abc import Sequence
from typing import Any

from riskops.monitoring.drift import DriftReport
from riskops.records import DriftResult

_BAND_ORDER = {"alert": 0, "watch": 1, "stable": 2, None: 3}


def table_rows(reports: dict[str, DriftReport]) -> list[dict[str, Any]]:
    """One row per (kind, feature), worst first: the Prefect table artifact."""
    rows = []
    for kind, report in reports.items():
        for f in report.features:
            rows.append(
                {
                    "kind": kind, "feature": f.name, "band": _band(f.band),
                    "psi": _round(f.psi), "psi_critical_99": _round(f.psi_critical_99),
                    "ks": _round(f.ks), "js": _round(f.js_distance),
                    "wasserstein_norm": _round(f.wasserstein_norm),
                    "null_rate_change": _round(f.null_rate_change),
                    "new_categories": ", ".join(f.new_categories[:5]),
                    "rows": f.target_rows, "why": "; ".join(f.reasons),
                }
            )  # fmt: skip
    rows.sort(key=lambda r: (_BAND_ORDER[r["band"]], -(r["psi"] or 0.0), r["kind"], r["feature"]))
    return rows


def _band(band: Any) -> str | None:
    return None if band is None else str(band)  # Band.STABLE is 0: never test it for truth


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 4)


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def psi_chart(
    history: Sequence[DriftResult], features: Sequence[str], warn: float, alert: float
) -> bytes:
    """PSI of ``features`` over the windows of ``history`` (one kind, oldest first), as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 3.2))
    axes = figure.subplots()
    for name in features:
        points = [
            (r.window_end, f["psi"])
            for r in history
            for f in r.features
            if f["name"] == name and f.get("psi") is not None
        ]
        if points:
            axes.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    axes.axhline(warn, color="orange", linestyle="--", linewidth=1, label=f"watch {warn}")
    axes.axhline(alert, color="red", linestyle="--", linewidth=1, label=f"alert {alert}")
    axes.set_ylabel("PSI")
    axes.set_title("PSI per window (served features against the training reference)")
    axes.legend(fontsize=7, loc="upper left")
    figure.autofmt_xdate()
    return _png(figure)


def score_chart(prediction: DriftReport) -> bytes | None:
    """Score distribution of the window against the reference (shares per reference bin)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    feature = prediction.features[0] if prediction.features else None
    if feature is None or not feature.bins:
        return None
    figure = Figure(figsize=(8, 3.2))
    axes = figure.subplots()
    x = range(len(feature.bins))
    axes.bar([i - 0.2 for i in x], feature.reference_shares, width=0.4, label="reference")
    axes.bar([i + 0.2 for i in x], feature.target_shares, width=0.4, label="this window")
    axes.set_xticks(list(x), feature.bins, rotation=45, fontsize=7)
    axes.set_ylabel("share of decisions")
    psi = "n/a" if feature.psi is None else f"{feature.psi:.3f}"
    axes.set_title(f"Score distribution now against the reference (PSI {psi})")
    axes.legend(fontsize=7)
    return _png(figure)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render_markdown(
    summary: dict[str, Any], rows: list[dict[str, Any]], charts: dict[str, bytes]
) -> str:
    """The markdown artifact: verdict per kind, the worst features, the charts inline."""
    window = summary["window"]
    lines = [
        f"# Drift of {summary['model']} v{summary['version']}",
        "",
        f"Window {window['start']} to {window['end']}, {summary['rows']} decisions.",
        "",
        "| kind | worst band | drifted features |",
        "|---|---|---|",
    ]
    for kind, verdict in summary["kinds"].items():
        drifted = ", ".join(verdict["drifted"]) or "none"
        lines.append(f"| {kind} | {verdict['worst_band'] or 'not judged'} | {drifted} |")
    lines += ["", "| kind | feature | band | PSI | critical (99%) | KS | null-rate change |",
              "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows[:15]:
        lines.append(
            f"| {r['kind']} | {r['feature']} | {r['band']} | {r['psi']} | {r['psi_critical_99']} "
            f"| {r['ks']} | {r['null_rate_change']} |"
        )
    for title, png in charts.items():
        lines += ["", f"![{title}]({_data_uri(png)})"]
    return "\n".join(lines) + "\n"


def render_html(
    summary: dict[str, Any], rows: list[dict[str, Any]], charts: dict[str, bytes]
) -> str:
    """A self-contained HTML page (charts embedded) of the same report, for the lake."""
    esc = html.escape
    head = ["kind", "feature", "band", "psi", "psi_critical_99", "ks", "js", "wasserstein_norm",
            "null_rate_change", "new_categories", "rows", "why"]  # fmt: skip
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(str(r[c]) if r[c] is not None else '')}</td>" for c in head)
        + "</tr>"
        for r in rows
    )  # fmt: skip
    images = "".join(f'<h2>{esc(t)}</h2><img alt="{esc(t)}" src="{_data_uri(p)}">'
                     for t, p in charts.items())  # fmt: skip
    window = summary["window"]
    made = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>Drift of {esc(summary['model'])} v{esc(str(summary['version']))}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;"
        "font-size:12px}td,th{border:1px solid #ccc;padding:3px 6px}</style></head><body>"
        f"<h1>Drift of {esc(summary['model'])} v{esc(str(summary['version']))}</h1>"
        f"<p>Window {esc(window['start'])} to {esc(window['end'])}, {summary['rows']} decisions. "
        f"Made {made}.</p><table><tr>{''.join(f'<th>{esc(c)}</th>' for c in head)}</tr>{body}"
        f"</table>{images}</body></html>"
    )
