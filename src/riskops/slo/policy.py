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
import re
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


DELIVERY_SLACK = dt.timedelta(minutes=10)  # a breach may reach the policy this late


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _window(breach: Mapping[str, Any], which: str) -> dt.timedelta | None:
    """A window of the breach ("5m", "1h", "30m"...), None when absent or unreadable."""
    text = str((breach.get("windows") or {}).get(which, ""))
    found = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    return dt.timedelta(seconds=float(found[1]) * _UNITS[found[2]]) if found else None


def _judge(
    breach: Mapping[str, Any],
    last: PromotionRecord | None,
    settings: SloSettings,
    now: dt.datetime | None = None,
) -> tuple[Outcome, str, str | None]:
    """(outcome, why, rollback target) from the model's last move, without changing anything.

    The breach's own ``detected_at`` is a caller's word: the guard window is also measured on
    the policy's clock (promotion to now), so a breach that claims to be early cannot reach a
    promotion of months ago; and only a breach of the promoted version, at page severity, can
    roll back. A breach that names no version (an alert rule over the model's requests) counts
    only once its short window holds nothing but the promoted version's traffic.
    """
    now = now or dt.datetime.now(dt.UTC)
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
    if breach.get("severity") != "page":
        return ("announced-only", f"severity {breach.get('severity')!r}: only a page (fast "
                "burn) rolls back", None)  # fmt: skip
    if not last.previous_version:
        first = f"{model} v{last.version} is the first champion: nothing to return to"
        return "announced-only", first, None
    since = parse_time(str(breach["detected_at"])) - to_utc(last.moved_at)
    guard = dt.timedelta(minutes=settings.guard_window_minutes)
    if parse_time(str(breach["detected_at"])) > now + dt.timedelta(minutes=1):
        return "announced-only", "the breach says it was detected in the future", None
    held = now - to_utc(last.moved_at)
    if held > guard + DELIVERY_SLACK:
        return ("announced-only", f"v{last.version} has been champion for {_minutes(held)}, "
                f"beyond the {settings.guard_window_minutes:g} min guard window",
                None)  # fmt: skip
    if since < dt.timedelta(0):
        return ("announced-only", f"the breach was detected {_minutes(-since)} before "
                f"v{last.version} was promoted", None)  # fmt: skip
    short = _window(breach, "short")
    if not version and (short is None or since < short):
        return ("announced-only", "the breach names no version and came "
                f"{_minutes(since)} after v{last.version} was promoted, within its short window "
                f"({(breach.get('windows') or {}).get('short', 'unknown')}): its burn may be the "
                "previous champion's", None)  # fmt: skip
    if since > guard:
        return ("announced-only", f"v{last.version} was promoted {_minutes(since)} before the "
                f"breach, outside the {settings.guard_window_minutes:g} min guard window",
                None)  # fmt: skip
    return ("rolled-back", f"the breach came {_minutes(since)} after v{last.version} was "
            f"promoted (guard window {settings.guard_window_minutes:g} min)",
            last.previous_version)  # fmt: skip


def react_to_breach(
    *, engine: Engine, client: MlflowClient, settings: SloSettings, breach: Mapping[str, Any],
    now: dt.datetime | None = None,
) -> BreachDecision:  # fmt: skip
    """Apply the rollback policy to one ``riskops.sla.breached`` payload (see the module);
    ``now``: the policy's clock (tests)."""
    model, breach_id = str(breach["model"]), str(breach.get("breach_id", ""))
    with session_scope(engine) as session:
        moves = history(session=session, model=model)
    last = moves[-1] if moves else None
    outcome, why, target = _judge(breach, last, settings, now)
    move = None
    if target is not None and last is not None:
        reason = (
            f"SLO breach {breach_id} ({breach.get('source', '?')}, {breach['severity']}): "
            f"{_burn_text(breach)} on v{last.version}; automatic rollback: {why}"
        )
        try:
            move = rollback(engine=engine, client=client, model=model, to_version=target,
                            actor=GUARD, reason=reason, expect_champion=last.version)  # fmt: skip
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
