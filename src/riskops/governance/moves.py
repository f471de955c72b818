"""What follows every move of the champion: reconcile the alias with the records."""

from __future__ import annotations

from riskops.governance.promotion import Move
from riskops.governance.reconcile import Finding, reconcile
from riskops.platform import Platform


def after_move(platform: Platform, model: str, move: Move) -> list[Finding]:
    """Reconcile the model's alias with the records after a move (changed or not)."""
    return reconcile(engine=platform.engine, client=platform.mlflow, models=[model])
