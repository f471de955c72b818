"""The demo's closing act: the loop closes on its own.

New credit applications arrive, first like the training data, then drifted (the generator's
knobs: incomes and balances shift, a share of one field goes missing). The monitor judges each
window; the drifted one raises ``riskops.drift.detected``; the automation posts to Slack (the
local receiver prints it) and starts the retraining gate, which retrains once, through the same
gates, into a new challenger that waits for a risk officer on the sign-off page.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
from rich.console import Console
from rich.table import Table
from sqlmodel import Session, col, select

from riskops.demo_scoring import send_all, traffic
from riskops.identity.credentials import DEMO_SCORING_CLIENT, key_file
from riskops.platform import Platform
from riskops.records import DriftResult, ModelVersionRecord, SignOffRequest
from riskops.settings import Settings
from riskops.stack.local import prefect_api, slack_messages
from riskops.stages.monitor import results_since

MODEL = "credit-scoring"
WINDOW = 800  # requests per window: above the spec's monitoring.min_rows (500)
DRIFT = {"covariate": 1.5, "missing": 0.3}
T = TypeVar("T")


def _until(what: str, check: Callable[[], T | None], timeout: float, console: Console) -> T:
    deadline = time.monotonic() + timeout
    with console.status(f"waiting for {what}…"):
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(2.0)
    raise RuntimeError(f"the demo waited {timeout:.0f}s for {what}; see .riskops/logs/worker.log")


def _monitor(
    settings: Settings, platform: Platform, console: Console, title: str
) -> list[DriftResult]:
    from prefect.deployments import run_deployment

    started = dt.datetime.now(dt.UTC)
    with prefect_api(settings), console.status(f"monitor: {title}…"):
        run = run_deployment(name="monitor/monitor", parameters={"model": MODEL}, timeout=600)
    if run.state is None or not run.state.is_completed():
        raise RuntimeError(f"the monitor run {run.name} ended {run.state}: see its logs")
    results = results_since(platform, MODEL, started)
    if not results:
        raise RuntimeError(f"the monitor run {run.name} judged no window of {MODEL}: see its logs")
    table = Table("kind", "worst band", "drifted features", "event", title=title)
    for r in results:
        drifted = [f["name"] for f in r.features if f.get("band") in ("watch", "alert")]
        table.add_row(r.kind, str(r.worst_band), ", ".join(drifted[:5]) or "-",
                      "riskops.drift.detected" if r.event_id else "-")  # fmt: skip
    console.print(table)
    return results


def _slack_message(settings: Settings, since: float) -> dict[str, Any] | None:
    """The first drift message about the model the receiver got after ``since`` (epoch)."""
    path = slack_messages(settings)
    if not path.exists():
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        entry = json.loads(line)
        received = dt.datetime.fromisoformat(entry["received_at"]).timestamp()
        payload = entry.get("payload") or {}
        text = json.dumps(payload)
        if received >= since - 1 and "drift" in text.lower() and MODEL in text:
            return payload
    return None


def _challenger(platform: Platform, champion: str) -> SignOffRequest | None:
    with Session(platform.engine) as session:
        newer = session.exec(
            select(ModelVersionRecord.version).where(ModelVersionRecord.model == MODEL)
        ).all()
        versions = [v for v in newer if int(v) > int(champion)]
        if not versions:
            return None
        return session.exec(
            select(SignOffRequest)
            .where(SignOffRequest.model == MODEL, col(SignOffRequest.version).in_(versions))
            .where(SignOffRequest.status == "waiting")
        ).first()


def close_the_loop(
    settings: Settings, platform: Platform, champions: dict[str, str], console: Console
) -> None:
    """Stable traffic, drifted traffic, the monitor on each; then Slack, retraining, sign-off."""
    champion = champions[MODEL]
    base = settings.scoring.resolved_url()
    key = key_file(settings, DEMO_SCORING_CLIENT).read_text(encoding="utf-8").strip()
    folder = settings.home_dir / "demo"
    url = f"{base}/v1/models/{MODEL}/score"
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        schema = client.get(f"{base}/openapi.json").json()["components"]["schemas"]
        schema = schema[f"Record-{MODEL}"]
        send_all(client, url, traffic(MODEL, schema, folder, rows=WINDOW, seed=2027))
        console.print(f"{WINDOW} applications like the training data scored by {MODEL} v{champion}")
        _monitor(settings, platform, console, f"{MODEL}: a window like the training data")
        knobs = ", ".join(f"{k}={v}" for k, v in DRIFT.items())
        drifted = traffic(MODEL, schema, folder, rows=WINDOW, seed=2028, drift=DRIFT)
        started = time.time()
        send_all(client, url, drifted)
        console.print(f"{WINDOW} drifted applications ({knobs}) scored")
    results = _monitor(settings, platform, console, f"{MODEL}: a drifted window")
    if not any(r.event_id for r in results):
        raise RuntimeError(f"the drifted window raised no event: {[r.kind for r in results]}")
    message = _until("the Slack message", lambda: _slack_message(settings, started), 180, console)
    console.print(f"Slack (local receiver, {slack_messages(settings)}):")
    for line in str(message.get("text", "")).splitlines()[:8]:
        console.print(f"  > {line}")
    request = _until(
        f"retraining of {MODEL} to reach sign-off",
        lambda: _challenger(platform, champion),
        900,
        console,
    )
    console.print(
        f"retrained: {MODEL} v{request.version} passed the gates and waits for a risk officer at "
        f"{settings.governance.resolved_url()}/signoff/{MODEL}/{request.version} (the champion "
        f"is still v{champion}: only a sign-off promotes it)"
    )
