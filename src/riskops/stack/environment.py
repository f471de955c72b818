"""The environment every stack process (and flow run) gets: one place, built from settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from riskops.settings import Settings


def prefect_home(settings: Settings) -> Path:
    return settings.home_dir / "prefect"


def stack_env(settings: Settings) -> dict[str, str]:
    """os.environ plus what the servers, the worker, flow runs and the watcher must agree on."""
    env = dict(os.environ)
    home = settings.home_dir
    env.update(
        {
            "RISKOPS_HOME": str(home),
            "RISKOPS_PROJECT_DIR": str(settings.home.project_dir.resolve()),
            "RISKOPS_DATABASE_URL": settings.database_url,
            "RISKOPS_PREFECT_PORT": str(settings.prefect.port),
            "RISKOPS_MLFLOW_PORT": str(settings.mlflow.port),
            "PREFECT_API_URL": settings.prefect.resolved_api_url(),
            "PREFECT_HOME": str(prefect_home(settings)),
            "PREFECT_API_DATABASE_CONNECTION_URL": (
                f"sqlite+aiosqlite:///{prefect_home(settings) / 'prefect.db'}"
            ),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": str(settings.prefect.worker_poll_seconds),
            "PREFECT_WORKER_PREFETCH_SECONDS": "5",
            "PREFECT_CLI_PROMPT": "false",
            "DO_NOT_TRACK": "1",
            "MLFLOW_TRACKING_URI": settings.mlflow.resolved_tracking_uri(),
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if settings.lake.backend == "local":
        env["RISKOPS_LAKE_ROOT"] = str(settings.lake_root)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env
