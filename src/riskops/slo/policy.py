"""The rollback policy: a breach that follows a promotion within the guard window rolls it back.

As SageMaker's deployment guardrails roll a deployment back on a CloudWatch alarm, riskops rolls
the champion back to the previous approved champion when ``riskops.sla.breached`` arrives within
``guard_window_minutes`` of that champion's promotion (``RISKOPS_SLO_AUTO_ROLLBACK=true``; off
by default). The rollback is the platform's own (:func:`riskops.governance.promotion.rollback`):
serialised per model, the alias moves, a ``model.rolled-back`` audit row and event commit
together, the service reloads and the rolled-back automation announces it. The actor is the
system principal :data:`GUARD`, which has no key and cannot log in; the reason names the breach.

Every breach reviewed leaves an ``sla.breach-reviewed`` audit row saying what was decided and
why, rolled back or not. Idempotent: the target is the promotion's own previous champion, named
explicitly, so a second breach event (or two at once) finds the model rolled back already and
moves nothing; and a breach whose version is not the champion's does not touch it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mlflow.tracking import MlflowClient
from sqlalchemy.engine import Engine

from riskops import audit
from riskops.audit.chain import to_utc
from riskops.db import session_scope
from riskops.governance.promotion import (
    Move,
    PromotionRefused,
    history,
    recorded_champion,
    rollback,
)
from riskops.records import PromotionRecord
from riskops.slo.breach import parse_time
from riskops.slo.settings import SloSettings

GUARD = "riskops-slo-guard"  # the actor of automatic rollbacks (a system principal, no key)
REVIEWED = "sla.breach-reviewed"

Outcome = Literal["rolled-back", "already-rolled-back", "announced-only", "refused"]


@dataclass(frozen=True)
class BreachDecision:
    """What the policy did with one breach, and why."""

    model: str
    breach_id: str
    outcome: Outcome
    why: str
    champion: str | None  # the recorded champion after the decision
    move: Move | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "breach_id": self.breach_id, "outcome": self.outcome,
                "why": self.why, "champion": self.champion}  # fmt: skip


def _minutes(delta: dt.timedelta) -> str:
    return f"{delta.total_seconds() / 60:.1f} min"


def _burn_text(breach: Mapping[str, Any]) -> str:
    rates = breach.get("burn_rates") or {}
    windows = breach.get("windows") or {}
    parts = [f"{rates[w]:g}x over {windows.get(w, w)}" for w in ("long", "short") if w in rates]
    return f"{breach['slo']} budget burning {' and '.join(parts) or 'too fast'}"


def _judge(
    breach: Mapping[str, Any], last: PromotionRecord | None, settings: SloSettings
) -> tuple[Outcome, str, str | None]:
    """(outcome, why, rollback target) from the model's last move, without changing anything."""
    model, version = breach["model"], breach.get("version")
    if (
        last is not None
        and last.kind == "rollback"
        and version
        and last.previous_version == version
    ):
        return ("already-rolled-back",
                f"{model} v{version} was rolled back already (to v{last.version} by {last.actor})",
                None)  # fmt: skip
    if not settings.auto_rollback:
        return "announced-only", "the rollback policy is off (RISKOPS_SLO_AUTO_ROLLBACK)", None
    if last is None or last.kind != "promote":
        what = "no promotion is recorded" if last is None else "the last move was a rollback"
        return "announced-only", f"{what} for {model}: nothing to guard", None
    if version and str(version) != last.version:
        return ("announced-only",
                f"the breach is of v{version}; the champion is v{last.version}", None)  # fmt: skip
    if not last.previous_version:
        first = f"{model} v{last.version} is the first champion: nothing to return to"
        return "announced-only", first, None
    since = parse_time(str(breach["detected_at"])) - to_utc(last.moved_at)
    guard = dt.timedelta(minutes=settings.guard_window_minutes)
    if since < dt.timedelta(0):
        return ("announced-only", f"the breach was detected {_minutes(-since)} before "
                f"v{last.version} was promoted", None)  # fmt: skip
    if since > guard:
        return ("announced-only", f"v{last.version} was promoted {_minutes(since)} before the "
                f"breach, outside the {settings.guard_window_minutes:g} min guard window",
                None)  # fmt: skip
    return ("rolled-back", f"the breach came {_minutes(since)} after v{last.version} was "
            f"promoted (guard window {settings.guard_window_minutes:g} min)",
            last.previous_version)  # fmt: skip


def react_to_breach(
    *, engine: Engine, client: MlflowClient, settings: SloSettings, breach: Mapping[str, Any]
) -> BreachDecision:
    """Apply the rollback policy to one ``riskops.sla.breached`` payload (see the module)."""
    model, breach_id = str(breach["model"]), str(breach.get("breach_id", ""))
    with session_scope(engine) as session:
        moves = history(session=session, model=model)
    last = moves[-1] if moves else None
    outcome, why, target = _judge(breach, last, settings)
    move = None
    if target is not None and last is not None:
        reason = (
            f"SLO breach {breach_id} ({breach.get('source', '?')}, {breach['severity']}): "
            f"{_burn_text(breach)} on v{last.version}; automatic rollback: {why}"
        )
        try:
            move = rollback(engine=engine, client=client, model=model, to_version=target,
                            actor=GUARD, reason=reason)  # fmt: skip
            if not move.changed:
                outcome, why = "already-rolled-back", f"v{target} is the champion already"
        except PromotionRefused as error:
            with session_scope(engine) as session:
                now = recorded_champion(session=session, model=model)
            if now == target:  # another breach's rollback got there first
                outcome, why = "already-rolled-back", f"v{target} is the champion already"
            else:
                outcome, why = "refused", f"the rollback to v{target} was refused: {error}"
    with session_scope(engine) as session:
        champion = recorded_champion(session=session, model=model)
        audit.append(
            session=session, actor=GUARD, action=REVIEWED,
            subject=f"{model}/{breach.get('version') or (last.version if last else '-')}",
            payload={"breach_id": breach_id, "slo": breach["slo"],
                     "severity": breach["severity"], "source": breach.get("source"),
                     "detected_at": breach["detected_at"],
                     "burn_rates": dict(breach.get("burn_rates") or {}),
                     "outcome": outcome, "why": why, "champion": champion,
                     "auto_rollback": settings.auto_rollback,
                     "guard_window_minutes": settings.guard_window_minutes},
        )  # fmt: skip
    return BreachDecision(model, breach_id, outcome, why, champion, move)
