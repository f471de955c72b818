"""Where a flow run finds the platform, wherever it runs (process or pod).

Ordinary configuration lives in the `riskops-platform` block; the pseudonymisation key lives
apart, in the `riskops-pseudonym-key` Secret block, so that configuration can be read, copied
and shown without exposing the key that protects customer identifiers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from prefect.blocks.core import Block
from prefect_aws import S3Bucket
from pydantic import Field, SecretStr

from riskops.db import make_engine
from riskops.lake import Lake, LocalLake, S3Lake
from riskops.platform import Platform
from riskops.settings import SparkSettings

PLATFORM_BLOCK = "riskops-platform"
PSEUDONYM_SECRET_BLOCK = "riskops-pseudonym-key"


class RiskopsPlatform(Block):
    """The riskops platform DB, lake and MLflow server, as seen from a flow run."""

    _block_type_name = "Riskops Platform"
    _block_type_slug = "riskops-platform"
    _description = "Platform database URL and lake location used by riskops flows."

    database_url: SecretStr = Field(description="SQLAlchemy URL of the platform records.")
    lake_backend: Literal["local", "s3"] = Field(default="local")
    lake_root: str | None = Field(default=None, description="Local lake directory.")
    s3_bucket: S3Bucket | None = Field(
        default=None, description="prefect-aws S3Bucket (credentials, endpoint) of the S3 lake."
    )
    mlflow_tracking_uri: str | None = Field(default=None, description="MLflow server URL.")
    spark_master: str = Field(default="local[*]", description="Spark master URL.")
    spark_driver_memory: str = Field(default="4g", description="spark.driver.memory.")
    spark_driver_cores: int | None = Field(default=None, description="spark.driver.cores.")
    spark_executor_memory: str | None = Field(default=None, description="spark.executor.memory.")
    spark_executor_cores: int | None = Field(default=None, description="spark.executor.cores.")
    spark_executor_instances: int | None = Field(
        default=None, description="spark.executor.instances."
    )
    spark_shuffle_partitions: int | None = Field(
        default=None, description="spark.sql.shuffle.partitions (None: 8 on local masters)."
    )
    batch_chunk_rows: int = Field(
        default=50_000, description="Rows per Arrow batch and decision-log file of batch scoring."
    )
    spark_remote: str | None = Field(
        default=None,
        description="Spark Connect URL (sc://host:port) the Spark stages use instead of a "
        "session-local Spark; unset: RISKOPS_SPARK_REMOTE of the flow run, else local.",
    )
    governance_public_key: str | None = Field(
        default=None,
        description="PEM of the governance API's Ed25519 public key: the sign-off flow accepts "
        "only decisions signed by it.",
    )
    governance_url: str | None = Field(
        default=None, description="Base URL of the governance API and sign-off page."
    )
    pseudonym_secret_block: str = Field(
        default=PSEUDONYM_SECRET_BLOCK,
        description="Name of the Secret block holding the pseudonymisation (HMAC) key.",
    )

    def get_lake(self) -> Lake:
        if self.lake_backend == "local":
            if not self.lake_root:
                raise ValueError(f"block {PLATFORM_BLOCK}: lake_root is required for a local lake")
            return LocalLake(Path(self.lake_root))
        if self.s3_bucket is None:
            raise ValueError(f"block {PLATFORM_BLOCK}: s3_bucket is required for an S3 lake")
        client = self.s3_bucket.credentials.get_s3_client()
        return S3Lake(client, self.s3_bucket.bucket_name, self.s3_bucket.bucket_folder)

    def pseudonym_key(self) -> str:
        from prefect.blocks.system import Secret

        try:
            value = Secret.load(self.pseudonym_secret_block).get()
        except ValueError as error:
            raise ValueError(
                f"Secret block {self.pseudonym_secret_block!r} is missing ({error}); "
                "`riskops up` saves it"
            ) from None
        return str(value)

    def spark_settings(self) -> SparkSettings:
        """Spark of this run: the block's master and memory; its Connect URL when set, else
        what RISKOPS_SPARK_REMOTE of the run's environment says."""
        chosen = {"remote": self.spark_remote} if self.spark_remote else {}
        return SparkSettings(
            master=self.spark_master,
            driver_memory=self.spark_driver_memory,
            driver_cores=self.spark_driver_cores,
            executor_memory=self.spark_executor_memory,
            executor_cores=self.spark_executor_cores,
            executor_instances=self.spark_executor_instances,
            shuffle_partitions=self.spark_shuffle_partitions,
            **chosen,
        )

    def platform(self, *, with_pseudonym_key: bool = False) -> Platform:
        """The library's Platform for this run; close it (``with``) when done."""
        return Platform(
            engine=make_engine(self.database_url.get_secret_value()),
            lake=self.get_lake(),
            mlflow_tracking_uri=self.mlflow_tracking_uri,
            spark=self.spark_settings(),
            batch_chunk_rows=self.batch_chunk_rows,
            pseudonym_key=self.pseudonym_key() if with_pseudonym_key else None,
            governance_public_key=self.governance_public_key,
        )


def load_platform(*, with_pseudonym_key: bool = False) -> Platform:
    """The platform of the `riskops-platform` block (what every flow starts with)."""
    return RiskopsPlatform.load(PLATFORM_BLOCK).platform(with_pseudonym_key=with_pseudonym_key)
