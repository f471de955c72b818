"""What each role may do. One table, checked wherever state changes (CLI, API, flows)."""

from __future__ import annotations

from typing import Literal

Role = Literal["admin", "model-developer", "risk-officer", "operator", "auditor", "service"]

# action -> roles allowed to perform it. The admin manages people but decides nothing about
# models: a platform administrator must not be able to approve a credit model.
PERMISSIONS: dict[str, frozenset[str]] = {
    "principals.manage": frozenset({"admin"}),
    # The admin may also onboard and land (bootstrap of a new install); doing so makes the
    # admin one of the people behind a version, so four-eyes still applies to it.
    "spec.onboard": frozenset({"model-developer", "admin"}),
    "spec.approve": frozenset({"risk-officer"}),
    "data.land": frozenset({"model-developer", "service", "operator", "admin"}),
    "data.recheck": frozenset({"model-developer", "operator", "admin"}),
    "signoff.decide": frozenset({"risk-officer"}),
    "champion.rollback": frozenset({"operator", "risk-officer"}),
    "champion.reconcile": frozenset({"operator", "risk-officer", "admin", "service"}),
    # Alertmanager's webhook (riskops.sla.breached) calls as a service principal.
    "sla.report": frozenset({"service", "operator"}),
    "audit.read": frozenset({"auditor", "risk-officer", "operator", "admin"}),
    "card.write": frozenset({"model-developer", "risk-officer", "operator", "auditor", "admin"}),
    "model.score": frozenset({"service", "operator"}),
    "monitor.run": frozenset({"operator", "model-developer", "risk-officer", "admin"}),
    "drift.read": frozenset(
        {"operator", "model-developer", "risk-officer", "auditor", "admin", "service"}
    ),
    "cost.read": frozenset({"operator", "model-developer", "risk-officer", "auditor", "admin"}),
}


class Forbidden(PermissionError):
    """The authenticated principal's role does not allow the action (HTTP 403)."""


def require(role: str, action: str, *, who: str) -> None:
    """Raise :class:`Forbidden` unless ``role`` may perform ``action``."""
    allowed = PERMISSIONS.get(action)
    if allowed is None:
        raise KeyError(f"unknown action {action!r}; known: {sorted(PERMISSIONS)}")
    if role not in allowed:
        raise Forbidden(
            f"{who} (role {role}) may not {action}; it needs one of: {', '.join(sorted(allowed))}"
        )
