"""What `riskops up` does on the Prefect server: blocks, work pool, deployments."""

from __future__ import annotations

import subprocess
import sys

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectAlreadyExists
from prefect_aws import AwsCredentials, S3Bucket
from prefect_aws.client_parameters import AwsClientParameters

from blocks import PLATFORM_BLOCK, RiskopsPlatform
from riskops.settings import Settings

WORK_POOL = "riskops-process"  # prefect.yaml names the same pool


def save_blocks(settings: Settings) -> None:
    """Register our block types and save the platform block the flows load."""
    RiskopsPlatform.register_type_and_schema()
    bucket = None
    if settings.lake.backend == "s3":
        if settings.lake.s3_block:
            bucket = S3Bucket.load(settings.lake.s3_block)
        else:
            bucket = S3Bucket(
                bucket_name=settings.lake.s3_bucket,
                bucket_folder=settings.lake.s3_prefix,
                credentials=AwsCredentials(
                    region_name=settings.lake.s3_region,
                    aws_client_parameters=AwsClientParameters(
                        endpoint_url=settings.lake.s3_endpoint_url
                    ),
                ),
            )
    RiskopsPlatform(
        database_url=settings.database_url,
        lake_backend=settings.lake.backend,
        lake_root=str(settings.lake_root) if settings.lake.backend == "local" else None,
        s3_bucket=bucket,
        mlflow_tracking_uri=settings.mlflow.resolved_tracking_uri(),
    ).save(PLATFORM_BLOCK, overwrite=True)


def ensure_work_pool() -> None:
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name=WORK_POOL, type="process"))
        except ObjectAlreadyExists:
            pass


def deploy_all(settings: Settings, env: dict[str, str]) -> str:
    """`prefect deploy --all` on prefect.yaml; raises with Prefect's output when it fails."""
    result = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"],
        cwd=settings.home.project_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(
            "prefect deploy --all failed (prefect.yaml in "
            f"{settings.home.project_dir}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result.stdout
