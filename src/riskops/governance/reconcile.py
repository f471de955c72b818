"""Reconcile: does the `champion` alias in MLflow agree with the promotion records?

An alias moved by hand in MLflow (outside riskops) would otherwise serve a version nobody
approved. Reconcile runs after every move and on a schedule; a disagreement writes an audit
row and emits ``riskops.champion.mismatch`` once per distinct finding (not on every pass).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from mlflow.tracking import MlflowClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskops import audit, events, ledger, outbox
from riskops.audit import AuditRecord
from riskops.db import session_scope
from riskops.events import RiskopsEvent
from riskops.governance.promotion import current_champion, recorded_champion

ACTOR = "riskops-reconcile"


@dataclass(frozen=True)
class Finding:
    model: str
    alias: str | None  # what MLflow serves
    recorded: str | None  # what the records say
    ok: bool
    message: str


def _last_finding(session: Session, model: str) -> dict[str, object] | None:
    row = session.exec(
        select(AuditRecord)
        .where(
            col(AuditRecord.action).in_(
                ["champion.mismatch", "champion.reconciled", "champion.restored"]
            ),
            AuditRecord.subject == f"{model}/champion",
        )
        .order_by(col(AuditRecord.seq).desc())
    ).first()
    return dict(row.payload) if row is not None else None


def check_model(client: MlflowClient, session: Session, model: str) -> Finding:
    alias = current_champion(client, model)
    recorded = recorded_champion(session=session, model=model)
    if alias == recorded:
        return Finding(model, alias, recorded, True, f"{model}: champion v{alias} matches")
    message = (
        f"{model}: MLflow alias champion -> {f'v{alias}' if alias else 'nothing'}, but the "
        f"promotion records say {f'v{recorded}' if recorded else 'no champion'}; the alias was "
        f"moved outside riskops. Put it back with `riskops reconcile {model} --restore` "
        "(operators; audited), or take the version through validation and sign-off"
        if recorded
        else f"{model}: MLflow alias champion -> v{alias}, but riskops never promoted a "
        f"champion; remove it with `riskops reconcile {model} --restore` or take the version "
        "through validation and sign-off"
    )
    return Finding(model, alias, recorded, False, message)


def reconcile(
    *, engine: Engine, client: MlflowClient, models: list[str] | None = None
) -> list[Finding]:
    """Check every onboarded model (or ``models``); record and announce new mismatches."""
    with session_scope(engine) as session:
        names = models or [record.name for record in ledger.list_specs(session=session)]
    findings = []
    for model in names:
        with session_scope(engine) as session:
            finding = check_model(client, session, model)
            last = _last_finding(session, model)
            state = {"alias": finding.alias, "recorded": finding.recorded, "ok": finding.ok}
            known = last is not None and {k: last.get(k) for k in state} == state
            if not finding.ok and not known:
                audit.append(
                    session=session, actor=ACTOR, action="champion.mismatch",
                    subject=f"{model}/champion", payload={**state, "message": finding.message},
                )  # fmt: skip
                version = finding.alias or finding.recorded or "0"
                outbox.enqueue(
                    session=session,
                    event=RiskopsEvent(
                        name=events.CHAMPION_MISMATCH,
                        resource_id=events.model_resource(model, version),
                        payload={"model": model, **asdict(finding)},
                    ),
                )
            elif finding.ok and last is not None and not last.get("ok"):
                audit.append(
                    session=session, actor=ACTOR, action="champion.reconciled",
                    subject=f"{model}/champion", payload={**state, "message": finding.message},
                )  # fmt: skip
        findings.append(finding)
    return findings


def restore(*, engine: Engine, client: MlflowClient, model: str, actor: str) -> Finding:
    """Put the alias back where the records say it belongs (or remove it), audited."""
    from riskops.governance.promotion import CHAMPION, lock_model

    with session_scope(engine) as session:
        lock_model(session, model)
        finding = check_model(client, session, model)
        if finding.ok:
            return finding
        if finding.recorded is None:
            client.delete_registered_model_alias(model, CHAMPION)
        else:
            client.set_registered_model_alias(model, CHAMPION, finding.recorded)
        audit.append(
            session=session, actor=actor, action="champion.restored",
            subject=f"{model}/champion",
            payload={"alias_was": finding.alias, "restored_to": finding.recorded,
                     "alias": finding.recorded, "recorded": finding.recorded, "ok": True},
        )  # fmt: skip
        return check_model(client, session, model)
