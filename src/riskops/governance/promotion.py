"""Move the `champion` alias: promotion after approval, rollback to an approved version.

A move is serialised per model (a row lock on `model_lock`), done in MLflow, then recorded
with its audit row in the same transaction; if recording fails, the alias is put back.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskops import audit, events
from riskops.db import session_scope
from riskops.events import RiskopsEvent
from riskops.governance.signoff import approval_of
from riskops.records import ModelLock, PromotionRecord

CHAMPION = "champion"
CHALLENGER = "challenger"


class PromotionRefused(RuntimeError):
    """The move is not allowed (never approved, unknown version, nothing to roll back to)."""


@dataclass(frozen=True)
class Move:
    record: PromotionRecord
    event: RiskopsEvent
    changed: bool


def _lock(session: Session, model: str) -> None:
    """Serialise alias moves of one model: create its lock row if needed, then update it."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(ModelLock).values(model=model, generation=0).on_conflict_do_nothing())
    session.execute(
        update(ModelLock)
        .where(col(ModelLock.model) == model)
        .values(generation=ModelLock.generation + 1)
    )


def current_champion(client: MlflowClient, model: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(model, CHAMPION).version)
    except MlflowException:
        return None


def history(*, session: Session, model: str) -> list[PromotionRecord]:
    return list(
        session.exec(
            select(PromotionRecord)
            .where(PromotionRecord.model == model)
            .order_by(col(PromotionRecord.id))
        ).all()
    )


def _event(kind: str, record: PromotionRecord) -> RiskopsEvent:
    related = ()
    if record.previous_version:
        related = (
            (events.model_resource(record.model, record.previous_version), "previous-champion"),
        )
    return RiskopsEvent(
        name=events.MODEL_PROMOTED if kind == "promote" else events.MODEL_ROLLED_BACK,
        resource_id=events.model_resource(record.model, record.version),
        payload={
            "model": record.model,
            "version": record.version,
            "previous_version": record.previous_version,
            "actor": record.actor,
            "reason": record.reason,
        },
        related=related,
    )


def _move(
    *, engine: Engine, client: MlflowClient, model: str, version: str, kind: str, actor: str,
    reason: str,
) -> Move:  # fmt: skip
    action = "model.promoted" if kind == "promote" else "model.rolled-back"
    moved_from: list[str | None] = []  # set once the alias has moved, for the compensation
    try:
        with session_scope(engine) as session:
            _lock(session, model)
            if approval_of(session=session, model=model, version=version) is None:
                raise PromotionRefused(
                    f"{model} v{version} was never approved by a risk officer; only approved "
                    f"versions can serve (see `riskops models show {model}`)"
                )
            try:
                client.get_model_version(model, version)
            except MlflowException as error:
                raise PromotionRefused(f"{model} v{version} is not in MLflow: {error}") from None
            previous = current_champion(client, model)
            if previous == str(version):
                last = history(session=session, model=model)
                record = (
                    last[-1]
                    if last
                    else PromotionRecord(model=model, version=version, kind=kind, actor=actor)
                )
                return Move(record, _event(kind, record), changed=False)
            client.set_registered_model_alias(model, CHAMPION, version)
            moved_from.append(previous)
            record = PromotionRecord(
                model=model, version=str(version), previous_version=previous, kind=kind,
                actor=actor, reason=reason,
            )  # fmt: skip
            session.add(record)
            audit.append(
                session=session, actor=actor, action=action, subject=f"{model}/{version}",
                payload={"previous_version": previous, "reason": reason},
            )  # fmt: skip
    except BaseException:
        if moved_from:  # the record did not commit: put the alias back where it was
            if moved_from[0] is None:
                client.delete_registered_model_alias(model, CHAMPION)
            else:
                client.set_registered_model_alias(model, CHAMPION, moved_from[0])
        raise
    if kind == "promote":
        _drop_challenger(client, model, str(version))
    return Move(record, _event(kind, record), changed=True)


def _drop_challenger(client: MlflowClient, model: str, version: str) -> None:
    try:
        if str(client.get_model_version_by_alias(model, CHALLENGER).version) == version:
            client.delete_registered_model_alias(model, CHALLENGER)
    except MlflowException:
        pass


def promote(
    *, engine: Engine, client: MlflowClient, model: str, version: str, actor: str, reason: str = ""
) -> Move:
    """Make an approved version the champion (idempotent)."""
    return _move(
        engine=engine,
        client=client,
        model=model,
        version=str(version),
        kind="promote",
        actor=actor,
        reason=reason,
    )


def rollback_target(*, engine: Engine, client: MlflowClient, model: str) -> str:
    """The champion before the current one, from the promotion history."""
    current = current_champion(client, model)
    with session_scope(engine) as session:
        moves = history(session=session, model=model)
    for move in reversed(moves):
        if move.version == current and move.previous_version:
            return move.previous_version
    raise PromotionRefused(f"{model} has no earlier champion to roll back to (current: {current})")


def rollback(
    *,
    engine: Engine,
    client: MlflowClient,
    model: str,
    to_version: str | None,
    actor: str,
    reason: str = "",
) -> Move:
    """Return the champion to the previous (or given) approved version."""
    target = to_version or rollback_target(engine=engine, client=client, model=model)
    return _move(
        engine=engine,
        client=client,
        model=model,
        version=str(target),
        kind="rollback",
        actor=actor,
        reason=reason,
    )
