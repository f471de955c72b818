"""Serve one scorer directory without a registry: ``python -m riskops.serving.standalone``.

For benchmarks and for trying a model before it is onboarded: the same app, schema, engine,
decision log and metrics as the platform service; the model comes from ``--model-dir`` (what
``LightGBMScorer.save`` writes) and ``--spec`` instead of the registry, its inputs are the spec's
features (no feature plan), decisions go to a lake and SQLite DB under ``--home``. The only key
is ``RISKOPS_BENCH_KEY`` (generated and printed when unset), with the ``service`` role.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
from pathlib import Path

from riskops.db import make_engine
from riskops.lake.local import LocalLake
from riskops.serving.app import ScoringService
from riskops.serving.decision_process import decision_log_for
from riskops.serving.keys import Caller, KeyCache, digest
from riskops.serving.loader import build_served
from riskops.serving.metrics import ServiceMetrics
from riskops.serving.models import ServedModels
from riskops.settings import ScoringSettings
from riskops.specs import load_spec
from riskops.training.scorers import BOOSTER_FILE, STATE_FILE


def build(model_dir: Path, spec_path: Path, home: Path, key: str) -> ScoringService:
    """The service for one scorer directory."""
    spec = load_spec(spec_path)
    files = {"scorer": str(model_dir / STATE_FILE)}
    if (model_dir / BOOSTER_FILE).exists():
        files["booster"] = str(model_dir / BOOSTER_FILE)
    home.mkdir(parents=True, exist_ok=True)
    engine = make_engine(f"sqlite:///{home / 'riskops.db'}")
    metrics = ServiceMetrics()

    def resolve(name: str, role: str) -> str | None:
        return "1" if role == "champion" else None

    def loader(name: str, role: str, version: str) -> object:
        return build_served(
            name=spec.name, version="1", role=role, spec=spec, files=files, signature=None,
            plan=None, vocabulary=None, pseudonym_key=secrets.token_hex(16), store=None,
            sample=None,
        )  # fmt: skip

    settings = ScoringSettings()
    models = ServedModels([spec.name], resolve, loader, metrics)  # type: ignore[arg-type]
    decisions = decision_log_for(
        settings, LocalLake(home / "lake"), engine,
        on_drop=lambda model, n: metrics.child(metrics.log_dropped, model).inc(n),
    )  # fmt: skip
    keys = KeyCache(lambda: {digest(key): Caller("standalone", "service")}, 3600.0)
    return ScoringService(
        settings=settings, models=models, keys=keys, metrics=metrics, decisions=decisions
    )


def main() -> None:
    """Parse arguments and serve."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--spec", type=Path, required=True)
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5004)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    key = os.environ.get("RISKOPS_BENCH_KEY") or "rk_" + secrets.token_urlsafe(24)
    if "RISKOPS_BENCH_KEY" not in os.environ:
        print(f"RISKOPS_BENCH_KEY={key}", flush=True)
    service = build(args.model_dir, args.spec, args.home, key)
    uvicorn.run(
        service.app(), host=args.host, port=args.port, loop="uvloop", http="httptools",
        log_level="warning", access_log=False,
    )  # fmt: skip


if __name__ == "__main__":
    main()
