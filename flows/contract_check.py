"""Contract check: triggered by `riskops.data.landed`, ends in accepted or rejected."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from blocks import load_platform
from flows.common import deliver_events
from riskops.cost.hook import run_cost
from riskops.landing.watcher import landed_event_id as watcher_event_id
from riskops.platform import Platform
from riskops.reports import contract_markdown
from riskops.stages.contract import CheckOutcome, check_landed, record_check_failure


@task(
    name="check-against-spec", persist_result=False, retries=1, retry_delay_seconds=5,
    cache_policy=NO_CACHE,
)  # fmt: skip
def check_against_spec(
    platform: Platform, model: str, uri: str, sha256: str, filename: str,
    landed_event_id: str | None,
) -> CheckOutcome:  # fmt: skip
    try:
        return check_landed(
            lake=platform.lake, engine=platform.engine, model=model, uri=uri, sha256=sha256,
            filename=filename, contract=platform.contract, landed_event_id=landed_event_id,
        )  # fmt: skip
    except Exception as error:
        record_check_failure(engine=platform.engine, model=model, sha256=sha256, error=error)
        raise


@flow(name="contract-check", persist_result=False)
def contract_check(
    model: str, uri: str, sha256: str, filename: str, landed_event_id: str | None = None
) -> dict[str, object]:
    """Check a landed file against its model's spec; store it or quarantine it; announce it."""
    logger = get_run_logger()
    # The watcher gives every landed content a fixed event id, so it need not be passed in.
    landed_event_id = landed_event_id or watcher_event_id(model, sha256)
    with load_platform() as platform, run_cost(platform, model=model) as cost:
        outcome = check_against_spec(platform, model, uri, sha256, filename, landed_event_id)
        cost.rows = outcome.row_count
        deliver_events(platform, [outcome.outbox_id])
    create_markdown_artifact(
        key=f"contract-{model}",
        markdown=contract_markdown(outcome),
        description=f"contract check of {filename} ({sha256[:16]})",
    )
    (logger.info if outcome.accepted else logger.warning)(
        "%s %s: %s", model, filename, outcome.summary
    )
    return {
        "accepted": outcome.accepted,
        "summary": outcome.summary,
        "dataset_version": outcome.dataset_version_id,
        "quarantine_uri": outcome.quarantine_uri,
    }
