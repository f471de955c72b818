"""Move the `champion` alias: promotion after approval, rollback down the stack of champions.

A move is serialised per model (a row lock on `model_lock`); the invariants (an authenticated
approval and a passed validation of that exact version) are checked inside the transaction
that records the move; the alias moves in MLflow, then the record, its audit row and its event
(outbox) commit together; if recording fails, the alias is put back.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskops import audit, events, outbox
from riskops.audit.chain import to_utc
from riskops.db import session_scope
from riskops.events import RiskopsEvent
from riskops.governance.signoff import approval_of, validation_of, validation_problem
from riskops.records import ModelLock, PromotionRecord

CHAMPION = "champion"
CHALLENGER = "challenger"


class PromotionRefused(RuntimeError):
    """The move is not allowed (never approved, unknown version, nothing to roll back to)."""


class RegistryUnavailable(RuntimeError):
    """MLflow answered with an error other than "no such alias": the champion is unknown."""


@dataclass(frozen=True)
class Move:
    record: PromotionRecord
    event: RiskopsEvent
    changed: bool
    outbox_id: str | None = None


def lock_model(session: Session, model: str) -> None:
    """Serialise governance changes of one model: create its lock row if needed, update it."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(ModelLock).values(model=model, generation=0).on_conflict_do_nothing())
    session.execute(
        update(ModelLock)
        .where(col(ModelLock.model) == model)
        .values(generation=ModelLock.generation + 1)
    )


def _no_such_alias(error: MlflowException) -> bool:
    """True when MLflow says the alias (or the registered model) does not exist.

    MLflow 3.17's SQL store raises INVALID_PARAMETER_VALUE "Registered model alias ... not
    found." and RESOURCE_DOES_NOT_EXIST "Registered Model with name=... not found"; over REST
    the same codes come back. Anything else (an outage, a permission error) is not an answer.
    """
    text = error.message.lower()
    if error.error_code == "INVALID_PARAMETER_VALUE":
        return "alias" in text and "not found" in text
    if error.error_code == "RESOURCE_DOES_NOT_EXIST":
        return "registered model" in text and "not found" in text
    return False


def current_champion(client: MlflowClient, model: str) -> str | None:
    """The version the alias points at; None only when there is no such alias or model.

    Any other registry error raises :class:`RegistryUnavailable`: treating it as "no champion"
    would let a candidate skip every comparison with the champion.
    """
    try:
        return str(client.get_model_version_by_alias(model, CHAMPION).version)
    except MlflowException as error:
        if _no_such_alias(error):
            return None
        raise RegistryUnavailable(
            f"looking up the champion of {model} failed with {error.error_code}: "
            f"{error.message}. The champion gates cannot be skipped on a registry error; retry "
            "once the registry answers."
        ) from error


def history(*, session: Session, model: str) -> list[PromotionRecord]:
    return list(
        session.exec(
            select(PromotionRecord)
            .where(PromotionRecord.model == model)
            .order_by(col(PromotionRecord.id))
        ).all()
    )


def champion_stack(moves: list[PromotionRecord]) -> tuple[list[str], set[str]]:
    """The approved champions in order (top = current) and the versions rolled back from.

    A promotion pushes its version; a rollback pops down to its target and marks the version it
    left, so a later rollback never brings back a version that was rolled back from.
    """
    stack: list[str] = []
    rolled_back_from: set[str] = set()
    for move in moves:
        if move.kind == "promote":
            stack = [v for v in stack if v != move.version] + [move.version]
            rolled_back_from.discard(move.version)  # a new approval and promotion restores it
        elif move.kind == "rollback":
            if move.previous_version:
                rolled_back_from.add(move.previous_version)
            while stack and stack[-1] != move.version:
                stack.pop()
            if not stack:
                stack.append(move.version)
    return [v for v in stack if v not in rolled_back_from], rolled_back_from


def recorded_champion(*, session: Session, model: str) -> str | None:
    """The champion the records say should be serving."""
    moves = history(session=session, model=model)
    return moves[-1].version if moves else None


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


def _check_may_serve(session: Session, model: str, version: str, kind: str) -> None:
    problem = validation_problem(
        validation_of(session=session, model=model, version=version), model, version
    )
    if problem:
        raise PromotionRefused(problem + "; it cannot serve")
    approval = approval_of(session=session, model=model, version=version)
    if approval is None:
        raise PromotionRefused(
            f"{model} v{version} was never approved by an authenticated risk officer; only "
            f"approved versions can serve (see `riskops models show {model}`)"
        )
    if kind != "promote":
        return
    left = [
        move for move in history(session=session, model=model)
        if move.kind == "rollback" and move.previous_version == str(version)
    ]  # fmt: skip
    if left and to_utc(approval.decided_at) <= to_utc(left[-1].moved_at):
        raise PromotionRefused(
            f"{model} v{version} was rolled back from on {left[-1].moved_at:%Y-%m-%d %H:%M} by "
            f"{left[-1].actor}; its approval of {approval.decided_at:%Y-%m-%d %H:%M} does not "
            "bring it back (a redelivered or replayed model.approved). Retrain and sign off again"
        )


def _rollback_target(session: Session, model: str, to_version: str | None) -> str:
    stack, rolled_back_from = champion_stack(history(session=session, model=model))
    current = stack[-1] if stack else None
    if to_version is not None:
        if to_version == current:
            raise PromotionRefused(
                f"{model} v{to_version} is the recorded champion already; if the MLflow alias "
                f"says otherwise, put it back with `riskops reconcile {model} --restore`"
            )
        if to_version in rolled_back_from:
            raise PromotionRefused(
                f"{model} v{to_version} was rolled back from; it returns only through a new "
                "validation and approval"
            )
        if to_version not in stack:
            raise PromotionRefused(
                f"{model} v{to_version} was never an approved champion; rollback targets: "
                f"{', '.join(stack[:-1]) or 'none'}"
            )
        return to_version
    if len(stack) < 2:
        raise PromotionRefused(
            f"{model} has no earlier approved champion to roll back to (current: {current})"
        )
    return stack[-2]


def _move(
    *, engine: Engine, client: MlflowClient, model: str, version: str | None, kind: str,
    actor: str, reason: str, expect_champion: str | None = None,
) -> Move:  # fmt: skip
    action = "model.promoted" if kind == "promote" else "model.rolled-back"
    moved_from: list[str | None] = []  # set once the alias has moved, for the compensation
    try:
        with session_scope(engine) as session:
            lock_model(session, model)
            if expect_champion is not None:
                now = recorded_champion(session=session, model=model)
                if now != expect_champion and now != version:
                    raise PromotionRefused(
                        f"{model}'s champion is v{now}, not v{expect_champion} as expected: it "
                        "moved since the decision was made; nothing was changed"
                    )
            if kind == "rollback":
                version = _rollback_target(session, model, version)
            assert version is not None
            _check_may_serve(session, model, version, kind)
            try:
                client.get_model_version(model, version)
            except MlflowException as error:
                raise PromotionRefused(f"{model} v{version} is not in MLflow: {error}") from None
            previous = current_champion(client, model)
            recorded = recorded_champion(session=session, model=model)
            if previous == str(version) and recorded == str(version):
                last = history(session=session, model=model)[-1]
                return Move(last, _event(kind, last), changed=False)
            client.set_registered_model_alias(model, CHAMPION, version)
            moved_from.append(previous)
            record = PromotionRecord(
                model=model, version=str(version), previous_version=recorded or previous,
                kind=kind, actor=actor, reason=reason,
            )  # fmt: skip
            session.add(record)
            audit.append(
                session=session, actor=actor, action=action, subject=f"{model}/{version}",
                payload={"previous_version": record.previous_version, "alias_was": previous,
                         "reason": reason},
            )  # fmt: skip
            event = _event(kind, record)
            event_id = outbox.enqueue(session=session, event=event)
    except BaseException:
        if moved_from:  # the record did not commit: put the alias back where it was
            if moved_from[0] is None:
                client.delete_registered_model_alias(model, CHAMPION)
            else:
                client.set_registered_model_alias(model, CHAMPION, moved_from[0])
        raise
    if kind == "promote":
        _drop_challenger(client, model, str(version))
    return Move(record, event, changed=True, outbox_id=event_id)


def _drop_challenger(client: MlflowClient, model: str, version: str) -> None:
    try:
        if str(client.get_model_version_by_alias(model, CHALLENGER).version) == version:
            client.delete_registered_model_alias(model, CHALLENGER)
    except MlflowException:
        pass


def promote(
    *, engine: Engine, client: MlflowClient, model: str, version: str, actor: str, reason: str = ""
) -> Move:
    """Make an approved, validated version the champion (idempotent)."""
    return _move(
        engine=engine, client=client, model=model, version=str(version), kind="promote",
        actor=actor, reason=reason,
    )  # fmt: skip


def rollback(
    *, engine: Engine, client: MlflowClient, model: str, to_version: str | None, actor: str,
    reason: str = "", expect_champion: str | None = None,
) -> Move:  # fmt: skip
    """Return the champion to the previous (or given) approved champion on the stack.

    ``expect_champion``: refuse (under the model's lock) unless the recorded champion is still
    this version, for callers that decided on an earlier reading (the SLO rollback policy).
    """
    return _move(
        engine=engine, client=client, model=model,
        version=str(to_version) if to_version else None, kind="rollback", actor=actor,
        reason=reason, expect_champion=expect_champion,
    )  # fmt: skip
