"""Contract check: triggered by `riskops.data.landed`, ends in accepted or rejected."""

from __future__ import annotations

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from blocks import PLATFORM_BLOCK, RiskopsPlatform
from riskops.datasets import CheckOutcome, check_landed, record_check_failure
from riskops.emit import emit_to_prefect
from riskops.landing.watcher import landed_event_id as watcher_event_id
from riskops.reports import contract_markdown
from riskops.settings import ContractSettings


@task(name="check-against-spec", persist_result=False, retries=1, retry_delay_seconds=5)
def check_against_spec(
    model: str, uri: str, sha256: str, filename: str, landed_event_id: str | None
) -> CheckOutcome:
    platform = RiskopsPlatform.load(PLATFORM_BLOCK)
    engine = platform.get_engine()
    try:
        return check_landed(
            lake=platform.get_lake(),
            engine=engine,
            model=model,
            uri=uri,
            sha256=sha256,
            filename=filename,
            contract=ContractSettings(),
            landed_event_id=landed_event_id,
        )
    except Exception as error:
        record_check_failure(engine=engine, model=model, sha256=sha256, error=error)
        raise
    finally:
        engine.dispose()


@flow(name="contract-check", persist_result=False)
def contract_check(
    model: str, uri: str, sha256: str, filename: str, landed_event_id: str | None = None
) -> dict[str, object]:
    """Check a landed file against its model's spec; store it or quarantine it; announce it."""
    logger = get_run_logger()
    # The watcher gives every landed content a fixed event id, so it need not be passed in.
    landed_event_id = landed_event_id or watcher_event_id(model, sha256)
    outcome = check_against_spec(model, uri, sha256, filename, landed_event_id)
    create_markdown_artifact(
        key=f"contract-{model}",
        markdown=contract_markdown(outcome),
        description=f"contract check of {filename} ({sha256[:16]})",
    )
    assert outcome.event is not None
    emit_to_prefect(outcome.event)
    (logger.info if outcome.accepted else logger.warning)(
        "%s %s: %s", model, filename, outcome.summary
    )
    return {
        "accepted": outcome.accepted,
        "summary": outcome.summary,
        "dataset_version": outcome.dataset_version_id,
        "quarantine_uri": outcome.quarantine_uri,
    }
