"""The environment every stack process (and flow run) gets: one place, built from settings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from riskops.secrets import local_secret, mlflow_webhook_key
from riskops.settings import Settings


def prefect_home(settings: Settings) -> Path:
    return settings.home_dir / "prefect"


def webhook_url(settings: Settings) -> str:
    """Where MLflow delivers registry webhooks (the bridge registers itself at start)."""
    return settings.webhook.register_url or (
        f"http://{settings.webhook.host}:{settings.webhook.port}/mlflow/webhook"
    )


def stack_env(settings: Settings) -> dict[str, str]:
    """os.environ plus what the servers, the worker, flow runs and the watcher must agree on."""
    env = dict(os.environ)
    env.pop("RISKOPS_API_KEY", None)  # a person's key never reaches the stack's processes
    home = settings.home_dir
    env.update(
        {
            "RISKOPS_HOME": str(home),
            "RISKOPS_PROJECT_DIR": str(settings.home.project_dir.resolve()),
            "RISKOPS_DATABASE_URL": settings.database_url,
            "RISKOPS_PREFECT_PORT": str(settings.prefect.port),
            "RISKOPS_MLFLOW_PORT": str(settings.mlflow.port),
            "RISKOPS_GOVERNANCE_PORT": str(settings.governance.port),
            "RISKOPS_SLACK_RECEIVER_HOST": settings.slack.receiver_host,
            "RISKOPS_SLACK_RECEIVER_PORT": str(settings.slack.receiver_port),
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
            # The embedded stack delivers MLflow webhooks over loopback HTTP; production MLflow
            # keeps its defaults (HTTPS, public addresses only).
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_CACHE_TTL": "5",
            # MLflow's background job workers (~1.5 GB) serve features riskops does not use.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.setdefault("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", mlflow_webhook_key(settings))
    webhook = settings.webhook
    env["RISKOPS_WEBHOOK_PORT"] = str(webhook.port)
    env["RISKOPS_WEBHOOK_SECRET"] = (
        webhook.secret.get_secret_value()
        if webhook.secret
        else local_secret(settings, "webhook.secret")
    )
    env["RISKOPS_WEBHOOK_REGISTER_URL"] = webhook_url(settings)
    # Spark stages of flow runs: the operator's Connect endpoint, else the stack's own Connect
    # server (no JVM start per run), else a session-local Spark (no variable).
    if settings.spark.remote:
        env["RISKOPS_SPARK_REMOTE"] = settings.spark.remote
    elif settings.spark.runs_local_connect():
        env["RISKOPS_SPARK_REMOTE"] = settings.spark.local_connect_url()
    else:
        env.pop("RISKOPS_SPARK_REMOTE", None)
    if settings.lake.backend == "local":
        env["RISKOPS_LAKE_ROOT"] = str(settings.lake_root)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    return env
