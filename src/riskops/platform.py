"""The one object every entry point holds: engine, lake, MLflow client and secrets.

Built once (from settings in the CLI and services, from the Prefect block in flow runs) and
closed as a context manager, so no caller builds its own engine or lake or forgets to dispose.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from riskops.db import make_engine
from riskops.lake.base import Lake
from riskops.settings import ContractSettings, Settings, SparkSettings

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


@dataclass
class Platform:
    """Clients and configuration of one riskops installation."""

    engine: Engine
    lake: Lake
    mlflow_tracking_uri: str | None
    spark: SparkSettings = field(default_factory=SparkSettings)
    contract: ContractSettings = field(default_factory=ContractSettings)
    batch_chunk_rows: int = 50_000  # rows per Arrow batch of batch scoring
    pseudonym_key: str | None = field(default=None, repr=False)
    governance_public_key: str | None = None  # PEM; verifies signed sign-off decisions
    _mlflow: MlflowClient | None = field(default=None, init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, *, with_secrets: bool = True) -> Platform:
        """The platform as the settings describe it (CLI, demo, watcher, services)."""
        from riskops.lake.factory import lake_from_settings
        from riskops.secrets import governance_public_key, pseudonym_key

        return cls(
            engine=make_engine(settings.database_url),
            lake=lake_from_settings(settings),
            mlflow_tracking_uri=settings.mlflow.resolved_tracking_uri(),
            spark=settings.spark,
            contract=settings.contract,
            batch_chunk_rows=settings.scoring.batch_chunk_rows,
            pseudonym_key=pseudonym_key(settings) if with_secrets else None,
            governance_public_key=governance_public_key(settings) if with_secrets else None,
        )

    @property
    def mlflow(self) -> MlflowClient:
        """The MLflow client (tracking + registry), made on first use."""
        if self._mlflow is None:
            if not self.mlflow_tracking_uri:
                raise ValueError("no MLflow tracking URI is configured (RISKOPS_MLFLOW_*)")
            from mlflow.tracking import MlflowClient

            self._mlflow = MlflowClient(tracking_uri=self.mlflow_tracking_uri)
        return self._mlflow

    def require_pseudonym_key(self) -> str:
        if not self.pseudonym_key:
            raise ValueError(
                "the pseudonymisation key is not available (riskops up saves it as the "
                "riskops-pseudonym-key secret block)"
            )
        return self.pseudonym_key

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Platform:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
