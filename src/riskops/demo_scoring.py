"""The demo's last act: the scoring service answers for every champion, with the reasons for a
decline in words and the traffic visible on /metrics."""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
from rich.console import Console
from rich.table import Table

from riskops.identity.credentials import DEMO_SCORING_CLIENT, key_file
from riskops.serving.requests import request_records
from riskops.settings import Settings
from riskops.synthetic import generate

TRAFFIC = 300  # single-record requests per model
FAMILIES = {
    "credit-scoring": "credit_scoring",
    "fraud-detection": "fraud_detection",
    "transaction-risk": "transaction_risk",
}


def _wait_for_champions(client: httpx.Client, base: str, champions: dict[str, str]) -> None:
    """Until the service serves the promoted versions (it follows the promotion events)."""
    deadline = time.monotonic() + 180
    served: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            models = client.get(f"{base}/v1/models", timeout=5).json()["models"]
            served = {m["name"]: (m["champion"] or {}).get("version") for m in models}
            if all(served.get(m) == v for m, v in champions.items()):
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(1.0)
    raise RuntimeError(
        f"the scoring service at {base} serves {served}, not the promoted champions {champions}; "
        f"see {Path('.riskops/logs/scoring.log')}"
    )


def traffic(
    model: str,
    schema: dict[str, Any],
    folder: Path,
    *,
    rows: int = TRAFFIC,
    seed: int = 2026,
    drift: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """New applications / transactions, in time order, with the fields the service's OpenAPI
    document asks for (``drift``: the generator's knobs, e.g. ``{"covariate": 1.0}``)."""
    path = folder / f"{model}-traffic-{seed}.parquet"
    generate(FAMILIES[model], max(5_000, rows), seed=seed, out_path=path, progress=False,
             drift=drift)  # fmt: skip
    frame = pd.read_parquet(path)
    fields = list(schema["required"])
    times = [f for f in fields if _format(schema["properties"][f]) == "date-time"]
    if times:
        frame = frame.sort_values(times[0], kind="stable")
    return request_records(frame.tail(rows), fields)


def send_all(
    client: httpx.Client, url: str, records: list[dict[str, Any]]
) -> list[tuple[float, dict[str, Any]]]:
    """POST each record to ``url`` (4 at a time); (latency ms, answer) per record."""

    def send(record: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        started = time.perf_counter()
        response = client.post(url, json=record)
        response.raise_for_status()
        return (time.perf_counter() - started) * 1000.0, response.json()

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(send, records))


def _format(prop: dict[str, Any]) -> str | None:
    options = prop.get("anyOf", [prop])
    return next((o.get("format") for o in options if o.get("format")), None)


def score_traffic(settings: Settings, champions: dict[str, str], console: Console) -> None:
    """Send a burst of traffic to each champion; explain one decline; show the metrics."""
    base = settings.scoring.resolved_url()
    key = key_file(settings, DEMO_SCORING_CLIENT).read_text(encoding="utf-8").strip()
    headers = {"Authorization": f"Bearer {key}"}
    folder = settings.home_dir / "demo"
    with httpx.Client(headers=headers, timeout=30) as client:
        with console.status("waiting for the scoring service to serve the new champions…"):
            _wait_for_champions(client, base, champions)
        schemas = client.get(f"{base}/openapi.json").json()["components"]["schemas"]
        table = Table("model", "version", "requests", "approve", "refer", "decline",
                      "p50 ms", "p99 ms", title=f"scoring service {base}")  # fmt: skip
        declined: tuple[str, dict[str, Any]] | None = None
        for model, version in champions.items():
            records = traffic(model, schemas[f"Record-{model}"], folder)
            answers = send_all(client, f"{base}/v1/models/{model}/score", records)
            bands = {"approve": 0, "refer": 0, "decline": 0}
            for _, body in answers:
                bands[body["band"]] += 1
                if body["band"] == "decline" and (declined is None or model == "credit-scoring"):
                    declined = (model, body)
            latencies = sorted(ms for ms, _ in answers)
            p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
            table.add_row(model, f"v{version}", str(len(answers)), *(str(bands[b]) for b in bands),
                          f"{statistics.median(latencies):.1f}", f"{p99:.1f}")  # fmt: skip
        console.print(table)
        console.print("(latency seen by the demo's client, through Python's HTTP stack)")
        if declined is not None:
            model, body = declined
            console.print(
                f"a declined decision of {model} v{body['version']} (id {body['decision_id']}, "
                f"probability of the bad outcome {body['score']:.2f}), in words:"
            )
            for reason in body["reasons"]:
                console.print(f"  - {reason}")
        metrics = client.get(f"{base}/metrics").text
    shown = [
        line for line in metrics.splitlines()
        if line.startswith(("riskops_scoring_decisions_total{", "riskops_model_current_version{",
                            "riskops_decision_log_queue_depth"))
    ]  # fmt: skip
    console.print(f"{base}/metrics (excerpt):")
    for line in shown:
        console.print(f"  {line}")
