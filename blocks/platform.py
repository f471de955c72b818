"""Where a flow run finds the platform DB and the lake, wherever it runs (process or pod)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from mlflow.tracking import MlflowClient
from prefect.blocks.core import Block
from prefect_aws import S3Bucket
from pydantic import Field, SecretStr
from sqlalchemy.engine import Engine

from riskops.db import make_engine
from riskops.lake import Lake, LocalLake, S3Lake
from riskops.settings import SparkSettings

PLATFORM_BLOCK = "riskops-platform"


class RiskopsPlatform(Block):
    """The riskops platform DB and lake, as seen from a flow run."""

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
    pseudonym_key: SecretStr | None = Field(
        default=None, description="Key of the keyed hash that replaces entity ids."
    )
    spark_master: str = Field(default="local[*]", description="Spark master URL.")
    spark_driver_memory: str = Field(default="4g", description="spark.driver.memory.")

    def get_engine(self) -> Engine:
        return make_engine(self.database_url.get_secret_value())

    def get_mlflow_client(self) -> MlflowClient:
        if not self.mlflow_tracking_uri:
            raise ValueError(f"block {PLATFORM_BLOCK}: mlflow_tracking_uri is not set")
        return MlflowClient(tracking_uri=self.mlflow_tracking_uri)

    def get_pseudonym_key(self) -> str:
        if self.pseudonym_key is None:
            raise ValueError(
                f"block {PLATFORM_BLOCK}: pseudonym_key is not set (riskops up sets it)"
            )
        return self.pseudonym_key.get_secret_value()

    def get_spark_settings(self) -> SparkSettings:
        return SparkSettings(master=self.spark_master, driver_memory=self.spark_driver_memory)

    def get_lake(self) -> Lake:
        if self.lake_backend == "local":
            if not self.lake_root:
                raise ValueError(f"block {PLATFORM_BLOCK}: lake_root is required for a local lake")
            return LocalLake(Path(self.lake_root))
        if self.s3_bucket is None:
            raise ValueError(f"block {PLATFORM_BLOCK}: s3_bucket is required for an S3 lake")
        client = self.s3_bucket.credentials.get_s3_client()
        return S3Lake(client, self.s3_bucket.bucket_name, self.s3_bucket.bucket_folder)
