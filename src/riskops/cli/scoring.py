"""`riskops serve` and `riskops score NAME FILE`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from riskops.cli.common import console, fail, get_settings, print_json
from riskops.serving.requests import request_records


def serve(ctx: typer.Context) -> None:
    """Run the scoring service in the foreground (`riskops up` runs it in the background)."""
    from riskops.serving import server

    settings = get_settings(ctx)
    console.print(f"scoring service on {settings.scoring.resolved_url()} (Ctrl-C stops it)")
    server.main()


def _records(path: Path) -> list[dict[str, Any]]:
    import pandas as pd

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif suffix == ".csv":
        frame = pd.read_csv(path)
    elif suffix in (".jsonl", ".ndjson"):
        frame = pd.read_json(path, lines=True)
    elif suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, list) else [data]
    else:
        raise ValueError(f"{path}: unknown format {suffix!r}; use .parquet, .csv, .json or .jsonl")
    return request_records(frame)


def score(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Model name."),
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Records to score."),
    explain: bool = typer.Option(False, help="Reason codes for approvals too."),
    drop: list[str] = typer.Option(
        [], "--drop", help="Columns of the file that are not request fields (e.g. the target)."
    ),
    batch: int = typer.Option(500, min=1, help="Records per request."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Score FILE through the running scoring service with your key; prints the decisions."""
    import httpx

    from riskops.identity.credentials import resolve_key

    settings = get_settings(ctx)
    key = resolve_key(settings)
    if not key:
        fail("no API key: set RISKOPS_API_KEY to a key with the service or operator role", 3)
    try:
        records = [{k: v for k, v in r.items() if k not in drop} for r in _records(file)]
    except (OSError, ValueError) as error:
        fail(str(error))
    url = f"{settings.scoring.resolved_url()}/v1/models/{name}/score"
    decisions: list[dict[str, Any]] = []
    with httpx.Client(timeout=60.0, headers={"Authorization": f"Bearer {key}"}) as client:
        for start in range(0, len(records), batch):
            chunk = records[start : start + batch]
            try:
                response = client.post(
                    url, params={"explain": str(explain).lower()}, json={"records": chunk}
                )
            except httpx.HTTPError as error:
                fail(f"the scoring service at {url} did not answer ({error}); is it running?")
            if response.status_code != 200:
                body = response.json() if "json" in response.headers.get("content-type", "") else {}
                problems = body.get("problems") or []
                detail = "; ".join(
                    f"{p['field'].replace('records[', 'row [')}: {p['message']}"
                    for p in problems[:10]
                )
                offset = f" (rows counted from {start} in this request)" if problems else ""
                fail(f"{response.status_code} from {url}: {body.get('error', response.text)}"
                     f"{offset}{': ' + detail if detail else ''}", 2)  # fmt: skip
            decisions.extend(response.json()["decisions"])
    if json_out:
        print_json(decisions)
        return
    bands: dict[str, int] = {}
    for decision in decisions:
        bands[decision["band"]] = bands.get(decision["band"], 0) + 1
    console.print(f"{len(decisions)} decisions from {name}: " + ", ".join(
        f"{band} {n}" for band, n in sorted(bands.items())))  # fmt: skip
    for decision in decisions[:20]:
        reasons = "; ".join(decision.get("reasons") or [])
        console.print(f"  {decision['decision_id'][:12]}  {decision['score']:.3f}  "
                      f"{decision['band']:<8} {reasons}")  # fmt: skip
