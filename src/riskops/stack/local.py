"""`riskops up`, `status` and `down` for the embedded stack."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from riskops.features.connect_server import (
    ConnectServerConfig,
    listening,
    server_argv,
    server_env,
)
from riskops.settings import Settings
from riskops.stack import processes
from riskops.stack.environment import prefect_home, stack_env, webhook_url
from riskops.stack.ports import ensure_free

COMPONENTS = (
    "prefect-server", "mlflow-server", "spark-connect", "worker", "watcher", "webhook-bridge",
    "governance", "scoring", "slack-receiver",
)  # fmt: skip
# once the servers are up
SERVICES = ("worker", "watcher", "webhook-bridge", "governance", "scoring", "slack-receiver")
WORK_POOL = "riskops-process"  # deployments/work_pools.py creates it; prefect.yaml uses it


class StackError(RuntimeError):
    pass


@dataclass
class ComponentStatus:
    name: str
    running: bool
    healthy: bool
    pid: int | None
    url: str | None
    log: str


@contextmanager
def prefect_api(settings: Settings) -> Iterator[None]:
    """Point this process's Prefect client at the stack's API for the duration of the block."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: settings.prefect.resolved_api_url()}):
        yield


def _dirs(settings: Settings) -> tuple[Path, Path]:
    return settings.home_dir / "run", settings.home_dir / "logs"


def connect_config(settings: Settings) -> ConnectServerConfig:
    """The local Spark Connect server of the stack, from RISKOPS_SPARK_CONNECT_*."""
    spark = settings.spark
    return ConnectServerConfig(
        host=spark.connect_host, port=spark.connect_port, master=spark.connect_master,
        driver_memory=spark.connect_driver_memory, work_dir=settings.home_dir / "spark",
    )  # fmt: skip


def _specs(settings: Settings) -> dict[str, processes.ProcessSpec]:
    env = stack_env(settings)
    run_dir, log_dir = _dirs(settings)
    py = sys.executable
    mlflow_dir = settings.home_dir / "mlflow"
    argv = {
        "prefect-server": [
            py, "-m", "prefect", "server", "start",
            "--host", settings.prefect.host, "--port", str(settings.prefect.port),
        ],
        "mlflow-server": [
            py, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{mlflow_dir / 'mlflow.db'}",
            "--artifacts-destination", str(mlflow_dir / "artifacts"),
            "--host", settings.mlflow.host, "--port", str(settings.mlflow.port),
            "--workers", "1",
        ],
        "worker": [
            py, "-m", "prefect", "worker", "start", "--pool", WORK_POOL,
            "--type", "process", "--name", "riskops-local", "--limit", "12",
        ],
        "watcher": [py, "-m", "riskops", "watch"],
        "webhook-bridge": [py, "-m", "riskops.webhooks.server"],
        "governance": [py, "-m", "riskops.governance.server"],
        "scoring": [py, "-m", "riskops.serving.server"],
        # Foreground spark-submit (not the daemonising sbin script): the pid file is the JVM's.
        "spark-connect": server_argv(connect_config(settings)),
        # Always on (loopback only): the Slack block points here unless RISKOPS_SLACK_WEBHOOK_URL
        # is set, and then it simply receives nothing.
        "slack-receiver": [
            py, "-m", "riskops.monitoring.receiver", "--host", settings.slack.receiver_host,
            "--port", str(settings.slack.receiver_port), "--out", str(slack_messages(settings)),
        ],
    }  # fmt: skip
    envs = {"spark-connect": server_env(env, log_dir / "spark")}  # SPARK_LOG_DIR
    return {
        name: processes.ProcessSpec(
            name, args, envs.get(name, env), settings.home.project_dir.resolve(), run_dir, log_dir
        )
        for name, args in argv.items()
    }


def slack_messages(settings: Settings) -> Path:
    """The JSON-lines file where the local Slack receiver keeps every message it was sent."""
    return settings.home_dir / "slack" / "messages.jsonl"


def _health_url(settings: Settings, name: str) -> str | None:
    if name == "prefect-server":
        return settings.prefect.resolved_api_url() + "/health"
    if name == "mlflow-server":
        return settings.mlflow.resolved_tracking_uri() + "/health"
    if name == "webhook-bridge":
        return f"http://{settings.webhook.host}:{settings.webhook.port}/health"
    if name == "governance":
        return settings.governance.resolved_url() + "/health"
    if name == "scoring":
        return settings.scoring.resolved_url() + "/health/live"  # ready comes once models load
    if name == "slack-receiver":
        return f"http://{settings.slack.receiver_host}:{settings.slack.receiver_port}/health"
    return None


HEARTBEAT_STALE_SECONDS = 30.0


def _worker_healthy(settings: Settings) -> bool:
    """The worker has sent Prefect a heartbeat recently (it is polling the pool)."""
    from prefect.client.orchestration import get_client

    try:
        with prefect_api(settings), get_client(sync_client=True) as client:
            workers = client.read_workers_for_work_pool(WORK_POOL)
    except Exception:
        return False
    now = time.time()
    return any(
        w.last_heartbeat_time and now - w.last_heartbeat_time.timestamp() < HEARTBEAT_STALE_SECONDS
        for w in workers
    )


def _watcher_healthy(settings: Settings) -> bool:
    from riskops.landing.run import heartbeat_file

    try:
        age = time.time() - heartbeat_file(settings).stat().st_mtime
    except FileNotFoundError:
        return False
    return age < HEARTBEAT_STALE_SECONDS


def _component_healthy(settings: Settings, name: str) -> bool:
    if name == "spark-connect":  # gRPC: it listens once its SparkContext is up
        return listening(settings.spark.connect_host, settings.spark.connect_port)
    if name == "worker":
        return _worker_healthy(settings)
    if name == "watcher":
        return _watcher_healthy(settings)
    return _healthy(_health_url(settings, name))


def _healthy(url: str | None) -> bool:
    if url is None:
        return True
    try:
        return httpx.get(url, timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_healthy(settings: Settings, spec: processes.ProcessSpec, timeout: float) -> None:
    def ready() -> bool:
        if processes.read_pid(spec.pid_file) is None:
            raise StackError(
                f"{spec.name} exited during start-up; last lines of {spec.log_file}:\n"
                + processes.tail(spec.log_file)
            )
        return _component_healthy(settings, spec.name)

    if not processes.wait_until(ready, timeout):
        raise StackError(
            f"{spec.name} did not become healthy within {timeout:.0f}s; "
            f"see {spec.log_file}:\n{processes.tail(spec.log_file)}"
        )


def _start_server(settings: Settings, spec: processes.ProcessSpec) -> bool:
    """Start a server unless ours is already running; False when it was already up."""
    if processes.read_pid(spec.pid_file) is not None:
        return False
    if spec.name == "prefect-server":
        ensure_free(
            settings.prefect.host,
            settings.prefect.port,
            "the Prefect server",
            "RISKOPS_PREFECT_PORT",
        )
    elif spec.name == "spark-connect":
        ensure_free(
            settings.spark.connect_host, settings.spark.connect_port,
            "the Spark Connect server", "RISKOPS_SPARK_CONNECT_PORT",
        )  # fmt: skip
    else:
        ensure_free(
            settings.mlflow.host, settings.mlflow.port, "the MLflow server", "RISKOPS_MLFLOW_PORT"
        )
    prefect_home(settings).mkdir(parents=True, exist_ok=True)
    (settings.home_dir / "mlflow" / "artifacts").mkdir(parents=True, exist_ok=True)
    processes.start(spec)
    return True


def _run_step(settings: Settings, env: dict[str, str], argv: list[str], what: str) -> None:
    result = subprocess.run(
        argv, cwd=settings.home.project_dir, env=env, capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        raise StackError(
            f"{what} failed ({' '.join(argv[1:])} in {settings.home.project_dir}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )


def up(settings: Settings, *, timeout: float = 120.0) -> dict[str, object]:
    """Start whatever is not running yet; returns timings and URLs. Idempotent."""
    started = time.monotonic()
    specs = _specs(settings)
    settings.home_dir.mkdir(parents=True, exist_ok=True)
    servers = [specs["prefect-server"]]
    if settings.mlflow.tracking_uri is None:
        servers.append(specs["mlflow-server"])
    if settings.prefect.api_url is not None:
        servers.remove(specs["prefect-server"])
    if settings.spark.runs_local_connect():  # flow runs use it through RISKOPS_SPARK_REMOTE
        servers.append(specs["spark-connect"])
    launched = {s.name: _start_server(settings, s) for s in servers}
    for spec in servers:
        _wait_healthy(settings, spec, timeout)
    servers_ready = time.monotonic() - started

    env = stack_env(settings)
    py = sys.executable
    # Separate processes: the library does not import the blocks/ and deployments/ layers.
    _run_step(settings, env, [py, "-m", "blocks.register"], "registering blocks")
    _run_step(settings, env, [py, "-m", "deployments.work_pools"], "creating the work pool")
    _run_step(
        settings,
        env,
        [py, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        "deploying prefect.yaml",
    )
    # After the deployments: the automations name the retrain-gate deployment by id.
    _run_step(settings, env, [py, "-m", "deployments.automations"], "creating the automations")
    deployed = time.monotonic() - started
    principals = _bootstrap(settings)
    ports = {
        "webhook-bridge": (settings.webhook.host, settings.webhook.port, "RISKOPS_WEBHOOK_PORT"),
        "governance": (settings.governance.host, settings.governance.port,
                       "RISKOPS_GOVERNANCE_PORT"),
        "scoring": (settings.scoring.host, settings.scoring.port, "RISKOPS_SCORING_PORT"),
        "slack-receiver": (settings.slack.receiver_host, settings.slack.receiver_port,
                           "RISKOPS_SLACK_RECEIVER_PORT"),
    }  # fmt: skip
    for name in SERVICES:
        launched[name] = processes.read_pid(specs[name].pid_file) is None
        if launched[name]:
            if name in ports:
                host, port, variable = ports[name]
                ensure_free(host, port, f"the {name} service", variable)
            processes.start(specs[name])
    for name in SERVICES:
        _wait_healthy(settings, specs[name], timeout)
    summary = {
        "seconds": round(time.monotonic() - started, 1),
        "servers_ready_seconds": round(servers_ready, 1),
        "deployed_seconds": round(deployed, 1),
        "started": [n for n, was in launched.items() if was],
        "already_running": [n for n, was in launched.items() if not was],
        "prefect_ui": settings.prefect.resolved_api_url().removesuffix("/api"),
        "mlflow_ui": settings.mlflow.resolved_tracking_uri(),
        "governance": settings.governance.resolved_url() + "/signoff",
        "scoring": settings.scoring.resolved_url(),
        "slack": settings.slack.block_url()
        if settings.slack.webhook_url is None
        else "(RISKOPS_SLACK_WEBHOOK_URL)",
        "slack_messages": str(slack_messages(settings)),
        "spark": settings.spark.remote
        or (settings.spark.local_connect_url() if settings.spark.runs_local_connect() else None)
        or f"session-local ({settings.spark.master})",
        "principals": principals,
        "home": str(settings.home_dir),
    }
    (settings.home_dir / "stack.json").write_text(json.dumps(summary, indent=2))
    return summary


def _bootstrap(settings: Settings) -> list[dict[str, str]]:
    """On the embedded defaults: the admin and the demo risk officer, keys in secrets/."""
    if not settings.embedded:
        return []
    from riskops.db import make_engine
    from riskops.identity.credentials import bootstrap_embedded

    engine = make_engine(settings.database_url)
    try:
        made = bootstrap_embedded(settings, engine)
    finally:
        engine.dispose()
    return [{"name": b.name, "role": b.role, "key_file": str(b.key_file)} for b in made]


def status(settings: Settings) -> list[ComponentStatus]:
    specs = _specs(settings)
    result = []
    for name in COMPONENTS:
        spec = specs[name]
        process = processes.read_pid(spec.pid_file)
        if name == "spark-connect" and process is None and not settings.spark.runs_local_connect():
            continue  # switched off (or a remote server is used): not part of this stack
        url = _health_url(settings, name)
        healthy = process is not None and _component_healthy(settings, name)
        shown = url.removesuffix("/api/health").removesuffix("/health") if url else None
        if name == "webhook-bridge":
            shown = webhook_url(settings)
        if name == "governance":
            shown = settings.governance.resolved_url()
        if name == "scoring":
            shown = settings.scoring.resolved_url()
        if name == "slack-receiver":
            shown = settings.slack.receiver_url()
        if name == "spark-connect":
            shown = settings.spark.local_connect_url()
        result.append(
            ComponentStatus(
                name,
                process is not None,
                healthy,
                process.pid if process else None,
                shown,
                str(spec.log_file),
            )
        )
    return result


def status_dicts(settings: Settings) -> list[dict[str, object]]:
    return [asdict(s) for s in status(settings)]


def down(settings: Settings) -> list[str]:
    """Stop exactly the processes `up` started (by pid file), workers first."""
    run_dir, _ = _dirs(settings)
    stopped = []
    for name in reversed(COMPONENTS):
        if processes.stop(run_dir / f"{name}.pid"):
            stopped.append(name)
    return stopped
