"""Settings, one small class per concern, all read from ``RISKOPS_*`` environment variables.

Nothing here is built at import time: call :func:`load_settings` in ``main()`` or a fixture.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from riskops.cost.settings import CostSettings
from riskops.monitoring.slack import SlackSettings
from riskops.slo.settings import SloSettings
from riskops.webhooks.settings import WebhookSettings


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", env_file=None)


class HomeSettings(BaseSettings):
    """Where the embedded defaults keep their state."""

    model_config = _config("RISKOPS_")

    home: Path = Field(
        default=Path(".riskops"),
        description="State directory of the embedded stack (DBs, lake, logs, pid files).",
    )
    project_dir: Path = Field(
        default_factory=Path.cwd,
        description="Checkout holding prefect.yaml and flows/; workers run flows from here.",
    )

    def resolved_home(self) -> Path:
        return self.home.expanduser().resolve()


class DatabaseSettings(BaseSettings):
    """The platform's own records (specs, landing ledger, dataset versions, audit)."""

    model_config = _config("RISKOPS_DATABASE_")

    url: SecretStr | None = Field(
        default=None,
        description="SQLAlchemy URL; default is SQLite at $RISKOPS_HOME/riskops.db. "
        "PostgreSQL: postgresql+psycopg://user@host:5432/db",
    )


class PrefectStackSettings(BaseSettings):
    """The Prefect server and worker that `riskops up` runs (or an external API)."""

    model_config = _config("RISKOPS_PREFECT_")

    host: str = Field(default="127.0.0.1", description="Interface the local server binds to.")
    port: int = Field(default=4200, description="Port of the local Prefect server.")
    api_url: str | None = Field(
        default=None, description="Use this Prefect API instead of starting a local server."
    )
    work_pool: str = Field(default="riskops-process", description="Work pool the worker polls.")
    worker_poll_seconds: float = Field(default=2.0, description="How often the worker polls.")

    def resolved_api_url(self) -> str:
        return self.api_url or f"http://{self.host}:{self.port}/api"


class MlflowStackSettings(BaseSettings):
    """The MLflow tracking server and registry."""

    model_config = _config("RISKOPS_MLFLOW_")

    host: str = Field(default="127.0.0.1", description="Interface the local server binds to.")
    port: int = Field(default=5001, description="Port of the local MLflow server.")
    tracking_uri: str | None = Field(
        default=None, description="Use this MLflow server instead of starting a local one."
    )

    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or f"http://{self.host}:{self.port}"


class LakeSettings(BaseSettings):
    """Landing zone, quarantine and dataset store: a local directory or an S3 bucket."""

    model_config = _config("RISKOPS_LAKE_")

    backend: Literal["local", "s3"] = Field(default="local", description="local or s3.")
    root: Path | None = Field(
        default=None, description="Local lake directory; default $RISKOPS_HOME/lake."
    )
    s3_bucket: str = Field(default="riskops-lake", description="Bucket of the S3 lake.")
    s3_prefix: str = Field(default="", description="Key prefix inside the bucket.")
    s3_endpoint_url: str | None = Field(
        default=None, description="S3 endpoint (moto, MinIO); None means AWS."
    )
    s3_region: str = Field(default="us-east-1", description="AWS region of bucket and queue.")
    s3_block: str | None = Field(
        default=None,
        description="Name of a saved prefect-aws S3Bucket block; when set it wins over s3_*.",
    )
    sqs_queue_url: str | None = Field(
        default=None, description="SQS queue receiving the bucket's ObjectCreated notifications."
    )


class WatcherSettings(BaseSettings):
    """The landing watcher."""

    model_config = _config("RISKOPS_WATCHER_")

    poll_seconds: float = Field(default=1.0, description="Local directory poll interval.")
    settle_seconds: float = Field(
        default=0.5, description="A local file must keep its size this long before it counts."
    )
    sqs_wait_seconds: int = Field(
        default=10, ge=0, le=20, description="SQS long-poll wait for S3 notifications."
    )


class ContractSettings(BaseSettings):
    """Platform defaults for data contracts when a spec does not say."""

    model_config = _config("RISKOPS_CONTRACT_")

    max_null_rate: float = Field(default=0.2, description="Max share of nulls in a feature.")
    max_reported_rows: int = Field(default=10, description="Row numbers listed per violation.")


class SparkSettings(BaseSettings):
    """Spark for feature builds and batch scoring."""

    model_config = _config("RISKOPS_SPARK_")

    master: str = Field(
        default="local[*]",
        description="Master URL of a session-local Spark (only when `remote` is unset).",
    )
    driver_memory: str = Field(
        default="4g",
        description="spark.driver.memory of a session-local Spark (only when `remote` is "
        "unset: a Connect server's memory is set where the server starts).",
    )
    remote: str | None = Field(
        default=None,
        description="Spark Connect URL (sc://host:port) that feature builds and batch scoring "
        "use instead of starting a JVM of their own; unset: a session-local Spark on `master`. "
        "The stack sets it for its flow runs when it runs a local Connect server.",
    )
    connect_server: bool = Field(
        default=True,
        description="`riskops up` starts a local Spark Connect server (loopback only) and "
        "points its flow runs at it; ignored when `remote` is set (that server is used).",
    )
    connect_host: str = Field(
        default="127.0.0.1", description="Interface the local Spark Connect server binds to."
    )
    connect_port: int = Field(default=15002, description="Port of the local Spark Connect server.")
    connect_master: str = Field(
        default="local[2]", description="Master of the local Spark Connect server."
    )
    connect_driver_memory: str = Field(
        default="4g", description="spark.driver.memory of the local Spark Connect server."
    )
    driver_cores: int | None = Field(
        default=None, ge=1, description="spark.driver.cores (cluster deploy mode); None: Spark's."
    )
    executor_memory: str | None = Field(
        default=None,
        description="spark.executor.memory; None: Spark's (1g). On local masters the driver runs "
        "the tasks and this has no effect.",
    )
    executor_cores: int | None = Field(
        default=None, ge=1, description="spark.executor.cores; None: Spark's."
    )
    executor_instances: int | None = Field(
        default=None, ge=1, description="spark.executor.instances; None: Spark's."
    )
    shuffle_partitions: int | None = Field(
        default=None,
        ge=1,
        description="spark.sql.shuffle.partitions; None: 8 on local masters, Spark's 200 else.",
    )

    @field_validator("remote")
    @classmethod
    def _remote_url(cls, value: str | None) -> str | None:
        if value is not None and value.strip() and not value.startswith("sc://"):
            raise ValueError(f"RISKOPS_SPARK_REMOTE must be a Spark Connect URL sc://host:port, "
                             f"not {value!r}")  # fmt: skip
        return value or None

    def describe(self) -> str:
        """Which Spark the stages use, for progress messages and run logs."""
        return (
            f"Spark Connect {self.remote}" if self.remote else f"session-local Spark {self.master}"
        )

    def local_connect_url(self) -> str:
        """The URL of the stack's own Connect server."""
        return f"sc://{self.connect_host}:{self.connect_port}"

    def runs_local_connect(self) -> bool:
        """True when `riskops up` starts (and `down` stops) a local Connect server."""
        return self.connect_server and self.remote is None

    def session_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`riskops.features.session.spark_session`."""
        return {
            "master": self.master,
            "driver_memory": self.driver_memory,
            "driver_cores": self.driver_cores,
            "executor_memory": self.executor_memory,
            "executor_cores": self.executor_cores,
            "executor_instances": self.executor_instances,
            "shuffle_partitions": self.shuffle_partitions,
            "remote": self.remote,
        }


class PrivacySettings(BaseSettings):
    """Pseudonymisation of identifiers (GDPR art. 4(5))."""

    model_config = _config("RISKOPS_")

    pseudonym_key: SecretStr | None = Field(
        default=None,
        description="Key of the keyed hash applied to entity ids; default: a random key "
        "created once in $RISKOPS_HOME/secrets/pseudonym.key.",
    )


class IdentitySettings(BaseSettings):
    """Which key the CLI acts with (the platform checks it against the principals)."""

    model_config = _config("RISKOPS_")

    api_key: SecretStr | None = Field(
        default=None, description="API key of the principal the CLI acts as (RISKOPS_API_KEY)."
    )
    credentials_file: Path = Field(
        default=Path("~/.config/riskops/credentials"),
        description="File holding the key when RISKOPS_API_KEY is unset; must be mode 0600.",
    )


class GovernanceSettings(BaseSettings):
    """The governance API and sign-off page (risk officers decide here)."""

    model_config = _config("RISKOPS_GOVERNANCE_")

    host: str = Field(default="127.0.0.1", description="Interface the service binds to.")
    port: int = Field(default=5003, description="Port of the governance API and sign-off page.")
    url: str | None = Field(
        default=None, description="Use this governance API instead of the local one."
    )
    secure_cookies: bool = Field(
        default=False,
        description="Mark the sign-off page's session cookie Secure (set it behind HTTPS).",
    )
    approve_wait_seconds: float = Field(
        default=120.0,
        ge=0,
        description="How long a decision waits for the sign-off request of a validated version.",
    )
    metrics_require_key: bool = Field(
        default=False,
        description="Require a principal's key for the platform exporter's /metrics even from "
        "loopback (off the loopback it always needs one).",
    )

    def resolved_url(self) -> str:
        return (self.url or f"http://{self.host}:{self.port}").rstrip("/")


class ScoringSettings(BaseSettings):
    """The scoring service (online decisions) and batch scoring."""

    model_config = _config("RISKOPS_SCORING_")

    host: str = Field(default="127.0.0.1", description="Interface the scoring service binds to.")
    port: int = Field(default=5004, description="Port of the scoring service.")
    url: str | None = Field(
        default=None, description="Use this scoring service, not the local one."
    )
    online_store: Literal["memory", "redis"] = Field(
        default="memory",
        description="Event store of the velocity features: in-process (one replica) or Redis "
        "(several replicas share it).",
    )
    redis_url: str = Field(
        default="redis://127.0.0.1:6379/0", description="Redis of the online feature store."
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest request body.")
    max_batch_records: int = Field(default=1000, ge=1, description="Most records per request.")
    reason_count: int = Field(default=4, ge=1, le=10, description="Reason codes per decision.")
    key_refresh_seconds: float = Field(
        default=5.0, gt=0, description="How often revoked or new API keys are picked up."
    )
    registry_poll_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Safety net beside the promotion events: how often the registry's champion "
        "and challenger aliases are compared with what is served.",
    )
    metrics_require_key: bool = Field(
        default=False,
        description="Require a key for /metrics even from loopback (off the loopback it always "
        "needs one).",
    )
    decision_log_queue: int = Field(
        default=100_000, ge=1, description="Decisions held in memory before new ones are dropped."
    )
    decision_log_batch_rows: int = Field(default=5000, ge=1, description="Rows per log file.")
    decision_log_flush_seconds: float = Field(
        default=2.0, gt=0, description="Longest a decision waits in memory before it is written."
    )
    decision_log_writer: Literal["process", "thread"] = Field(
        default="process",
        description="Who writes the decision log: a child process (the event loop never "
        "waits for it; measured, score-path p99 15 ms with the writer thread and 6 ms with the "
        "process, benchmarks/serving.py on 2 cores) or a thread of the service (no extra "
        "process, for a platform that cannot start one).",
    )
    decision_log_writer_nice: int = Field(
        default=10,
        ge=0,
        le=19,
        description="How much nicer than the service the decision-log writer process runs: "
        "the kernel then gives the event loop the core first when both want it (measured, "
        "score-path p99 5.9 ms with 10 against 6.2 ms with 0). The writer still takes what the "
        "loop leaves; on a saturated machine its queue may fill (drops are counted and alerted).",
    )
    shadow_queue: int = Field(
        default=10_000, ge=1, description="Requests waiting for the challenger's shadow score."
    )
    gc_thresholds: tuple[int, int, int] = Field(
        default=(50_000, 50, 100),
        description="The service process's garbage-collector thresholds (gc.set_threshold). "
        "Python's (700, 10, 10) make the collector walk the decision-log queue every few "
        "hundred requests: measured, p99 of the score-only path 62 ms with them, 4.3 ms with "
        "these (benchmarks/serving.py). The hot path makes little cyclic garbage.",
    )
    batch_chunk_rows: int = Field(
        default=50_000,
        ge=1000,
        description="Rows per Arrow batch of batch scoring (mapInPandas) and per decision-log "
        "file it writes.",
    )

    def resolved_url(self) -> str:
        return (self.url or f"http://{self.host}:{self.port}").rstrip("/")


@dataclass(frozen=True)
class Settings:
    """All settings, built once in ``main()`` or a fixture."""

    home: HomeSettings
    database: DatabaseSettings
    prefect: PrefectStackSettings
    mlflow: MlflowStackSettings
    lake: LakeSettings
    watcher: WatcherSettings
    contract: ContractSettings
    spark: SparkSettings
    privacy: PrivacySettings
    webhook: WebhookSettings
    identity: IdentitySettings
    governance: GovernanceSettings
    scoring: ScoringSettings
    slack: SlackSettings
    slo: SloSettings = field(default_factory=SloSettings)
    cost: CostSettings = field(default_factory=CostSettings)

    @property
    def embedded(self) -> bool:
        """True on the embedded defaults: the platform records are in SQLite, not PostgreSQL."""
        return self.database_url.startswith("sqlite")

    @property
    def home_dir(self) -> Path:
        return self.home.resolved_home()

    @property
    def database_url(self) -> str:
        if self.database.url is not None:
            return self.database.url.get_secret_value()
        return f"sqlite:///{self.home_dir / 'riskops.db'}"

    @property
    def lake_root(self) -> Path:
        return (self.lake.root or self.home_dir / "lake").expanduser().resolve()


def load_settings() -> Settings:
    """Read every settings class from the environment."""
    return Settings(
        home=HomeSettings(),
        database=DatabaseSettings(),
        prefect=PrefectStackSettings(),
        mlflow=MlflowStackSettings(),
        lake=LakeSettings(),
        watcher=WatcherSettings(),
        contract=ContractSettings(),
        spark=SparkSettings(),
        privacy=PrivacySettings(),
        webhook=WebhookSettings(),
        identity=IdentitySettings(),
        governance=GovernanceSettings(),
        scoring=ScoringSettings(),
        slack=SlackSettings(),
        slo=SloSettings(),
        cost=CostSettings(),
    )
