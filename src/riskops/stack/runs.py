"""Read flow runs back from the Prefect API (for the demo and `--wait` style reporting)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RunInfo:
    name: str
    deployment: str
    state: str
    parameters: dict[str, Any]
    created: dt.datetime | None
    started: dt.datetime | None
    ended: dt.datetime | None


def deployment_runs(deployment: str, limit: int = 200) -> list[RunInfo]:
    """Runs of the named deployment (any flow), newest first. Needs PREFECT_API_URL."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.client.schemas.sorting import FlowRunSort

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=limit,
        )
    return [
        RunInfo(
            name=run.name,
            deployment=deployment,
            state=run.state.name if run.state else "?",
            parameters=dict(run.parameters),
            created=run.created,
            started=run.start_time,
            ended=run.end_time,
        )
        for run in runs
    ]


def read_events(
    api_url: str,
    *,
    names: list[str],
    resource_prefix: str | None = None,
    since: dt.datetime | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Events from the Prefect server's event store (`POST /events/filter`), oldest first.

    The server returns at most 50 events a page; riskops queries are narrow enough for one.
    """
    import httpx

    since = since or dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    body: dict[str, Any] = {
        "filter": {
            "occurred": {"since": since.isoformat(), "until": dt.datetime.now(dt.UTC).isoformat()},
            "event": {"name": names},
            "order": "ASC",
        },
        "limit": limit,
    }
    if resource_prefix:
        body["filter"]["resource"] = {"id_prefix": [resource_prefix]}
    response = httpx.post(f"{api_url}/events/filter", json=body, timeout=10)
    response.raise_for_status()
    return list(response.json()["events"])
