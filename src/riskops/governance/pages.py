"""HTML of the sign-off page: plain server-rendered pages, no script, every value escaped."""

from __future__ import annotations

from html import escape
from typing import Any

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:70rem;color:#1b1f24}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}
td,th{border:1px solid #ccd;padding:.25rem .5rem}
th{background:#eef}.fail{color:#b00020;font-weight:600}.pass{color:#0a7a2f}
.note{background:#fff6d6;padding:.5rem 1rem;border-left:4px solid #e0a800}
.error{background:#fde2e4;padding:.5rem 1rem;border-left:4px solid #b00020}
.ok{background:#e2f7e8;padding:.5rem 1rem;border-left:4px solid #0a7a2f}
textarea{width:100%;height:6rem}
"""


def _page(title: str, body: str, who: str | None = None) -> str:
    user = (
        f'<form method="post" action="/signoff/logout">signed in as <b>{escape(who)}</b> '
        '<button type="submit">log out</button></form>'
        if who
        else ""
    )
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}"
        f"</title><style>{STYLE}</style></head><body><header>{user}</header>"
        f"<h1>{escape(title)}</h1>{body}</body></html>"
    )


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape("" if value is None else str(value))


def _table(headers: list[str], rows: list[list[Any]], row_class: list[str] | None = None) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = ""
    for i, row in enumerate(rows):
        cls = f' class="{row_class[i]}"' if row_class else ""
        body += f"<tr{cls}>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>"
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def login_page(message: str | None = None, status: str = "error") -> str:
    note = f'<p class="{status}">{escape(message)}</p>' if message else ""
    return _page(
        "riskops sign-off: log in",
        note + "<p>Risk officers log in with their riskops API key.</p>"
        '<form method="post" action="/signoff/login"><label>API key '
        '<input type="password" name="key" id="key" autocomplete="off" size="60"></label> '
        '<button type="submit" id="login">log in</button></form>',
    )


def pending_page(who: str, rows: list[dict[str, Any]]) -> str:
    if not rows:
        return _page("Versions awaiting sign-off", "<p>Nothing is waiting for a decision.</p>", who)
    items = "".join(
        f'<li><a href="/signoff/{escape(r["model"])}/{escape(r["version"])}">'
        f"{escape(r['model'])} v{escape(r['version'])}</a> "
        f"requested {escape(r['requested_at'])}</li>"
        for r in rows
    )
    return _page("Versions awaiting sign-off", f"<ul id='pending'>{items}</ul>", who)


def version_page(who: str, view: dict[str, Any], csrf: str, message: str | None = None,
                 status: str = "ok") -> str:  # fmt: skip
    model, version = view["model"], view["version"]
    parts = [f'<p class="{status}" id="message">{escape(message)}</p>' if message else ""]
    validation = view["validation"]
    if validation is None:
        parts.append("<p class='note'>Not validated yet.</p>")
    else:
        verdict = "passed" if validation["passed"] else "FAILED"
        parts.append(f"<h2>Gates ({verdict}, {escape(validation['validated_at'])})</h2>")
        rows = [
            [g["name"], g.get("status") or ("pass" if g["passed"] else "fail"), g.get("value"),
             g.get("threshold"), g.get("message", "")]
            for g in validation["results"]
        ]  # fmt: skip
        classes = ["pass" if g["passed"] else "fail" for g in validation["results"]]
        parts.append(_table(["gate", "result", "value", "threshold", "what"], rows, classes))
    for table in view["fairness"]:
        parts.append(f"<h3>{escape(table['gate'])} (cut-off {_cell(table['threshold'])})</h3>")
        parts.append(
            _table(
                ["group", "n", "approval rate", "true-positive rate", "included"],
                [
                    [
                        g.get("group"),
                        g.get("n"),
                        g.get("approval_rate"),
                        g.get("true_positive_rate"),
                        g.get("included"),
                    ]
                    for g in table["groups"]
                ],
            )
        )
    if view["reason_code_examples"]:
        parts.append("<h2>Reason-code examples</h2>")
        parts.append(
            _table(
                ["row", "reasons"],
                [
                    [e.get("row"), "; ".join(e.get("reasons", []))]
                    for e in view["reason_code_examples"]
                ],
            )
        )
    people = view["people"]
    parts.append("<h2>People behind this version (four-eyes)</h2>")
    parts.append(_table(["principal", "did"], people["roles"]))
    for unknown in people["unknown"]:
        parts.append(f"<p class='note'>Unknown: {escape(unknown)}</p>")
    lineage = view["lineage"] or {}
    landed = lineage.get("landed") or {}
    dataset = lineage.get("dataset_version") or {}
    parts.append("<h2>Lineage</h2>")
    parts.append(
        _table(
            ["landed file", "sha256", "dataset version", "feature set", "MLflow run"],
            [
                [
                    landed.get("filename"),
                    (landed.get("sha256") or "")[:16],
                    dataset.get("id"),
                    (lineage.get("feature_set") or {}).get("id"),
                    (lineage.get("model_version") or {}).get("run_id"),
                ]
            ],
        )
    )
    parts.append(f'<p><a href="/signoff/{escape(model)}/{escape(version)}/card">Model card</a></p>')
    parts.append("<h2>Decisions on record</h2>")
    parts.append(
        _table(
            ["when", "who", "role", "decision", "accepted", "channel", "justification", "refusal"],
            [
                [
                    d["decided_at"],
                    d["approver"],
                    d.get("approver_role"),
                    d["decision"],
                    d["accepted"],
                    d.get("channel"),
                    d["justification"],
                    d.get("refusal"),
                ]
                for d in view["decisions"]
            ],
        )
    )
    request = view["request"]
    if request and request["status"] == "waiting":
        parts.append(
            f'<h2>Decide</h2><form method="post" action="/signoff/{escape(model)}/'
            f'{escape(version)}/decision"><input type="hidden" name="csrf" value="{escape(csrf)}">'
            '<label><input type="radio" name="decision" value="approve" id="approve"> approve'
            '</label> <label><input type="radio" name="decision" value="decline" id="decline">'
            ' decline</label><p><label for="justification">Justification (the evidence you '
            'relied on, any conditions)</label><textarea name="justification" id="justification">'
            '</textarea></p><button type="submit" id="submit">record decision</button></form>'
        )
    else:
        state = request["status"] if request else "no sign-off request yet"
        parts.append(f"<p class='note'>Decision closed: {escape(state)}.</p>")
    return _page(f"{model} v{version}", "".join(parts), who)
