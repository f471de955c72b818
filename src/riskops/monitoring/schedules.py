"""The retraining gate's per-model cron schedules, from each spec's ``retrain_schedule``.

Brought in line by ``riskops up`` (``deployments.automations``) and whenever a spec takes
effect (``riskops onboard``, ``riskops specs approve``), so a new cron does not wait for a
restart. Each model's schedule is found by its slug on the ``retrain-gate`` deployment.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.client.schemas.actions import DeploymentScheduleCreate
from prefect.client.schemas.schedules import CronSchedule

GATE_DEPLOYMENT = "retrain-gate/retrain-gate"  # <flow name>/<deployment name> in prefect.yaml
SCHEDULE_SLUG = "retrain-{model}"


def _schedule_parameters(model: str) -> dict[str, Any]:
    return {"model": model, "severity": "alert", "kind": "schedule"}


def sync_retrain_schedules(
    client: SyncPrefectClient, deployment_id: UUID, schedules: dict[str, str | None]
) -> dict[str, str]:
    """Make the gate's per-model cron schedules match ``schedules`` (model -> cron or None).

    Schedules are found by slug (``retrain-<model>``); a model whose spec dropped its cron, or
    that is not given at all, loses its schedule. Other schedules are left alone.
    """
    done: dict[str, str] = {}
    current = {
        s.slug: s
        for s in client.read_deployment_schedules(deployment_id)
        if s.slug and s.slug.startswith("retrain-")
    }
    wanted = {SCHEDULE_SLUG.format(model=m): (m, cron) for m, cron in schedules.items() if cron}
    for slug, schedule in current.items():
        if slug not in wanted:
            client.delete_deployment_schedule(deployment_id, schedule.id)
            done[slug.removeprefix("retrain-")] = "deleted"
    for slug, (model, cron) in wanted.items():
        cron_schedule = CronSchedule(cron=cron, timezone="UTC")
        found = current.get(slug)
        if found is not None:
            same = (
                isinstance(found.schedule, CronSchedule)
                and found.schedule.cron == cron
                and found.parameters == _schedule_parameters(model)
                and found.active
            )
            if same:
                done[model] = "unchanged"
                continue
            client.delete_deployment_schedule(deployment_id, found.id)
        client.create_deployment_schedules(
            deployment_id,
            [
                DeploymentScheduleCreate(
                    schedule=cron_schedule, active=True, slug=slug,
                    parameters=_schedule_parameters(model),
                )
            ],
        )  # fmt: skip
        done[model] = "updated" if found is not None else "created"
    return done


def spec_schedules(database_url: str) -> dict[str, str | None]:
    """Each onboarded model's ``monitoring.retrain_schedule`` from the platform DB."""
    from riskops.db import make_engine, session_scope
    from riskops.ledger import list_specs
    from riskops.specs import parse_spec

    engine = make_engine(database_url)
    try:
        with session_scope(engine) as session:
            records = list_specs(session=session)
            return {
                r.name: parse_spec(r.spec, f"platform DB spec {r.name}").monitoring.retrain_schedule
                for r in records
            }
    finally:
        engine.dispose()


def sync_schedules_now(database_url: str) -> dict[str, str]:
    """Every onboarded model's retrain schedule on the running server (onboard, spec approval).

    Raises:
        LookupError: the ``retrain-gate`` deployment does not exist (the stack was never up).
    """
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            deployment = client.read_deployment_by_name(GATE_DEPLOYMENT)
        except ObjectNotFound:
            raise LookupError(f"deployment {GATE_DEPLOYMENT} not found") from None
        return sync_retrain_schedules(client, deployment.id, spec_schedules(database_url))
