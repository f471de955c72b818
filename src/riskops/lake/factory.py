"""Build the lake the settings ask for."""

from __future__ import annotations

from functools import partial
from typing import Any

from riskops.lake.base import Lake
from riskops.lake.local import LocalLake
from riskops.lake.s3 import S3Lake
from riskops.settings import Settings


def s3_client_from_settings(settings: Settings, service: str = "s3") -> Any:
    """A boto3 client for the lake's S3 (or SQS) endpoint; credentials from the AWS chain."""
    import boto3

    return boto3.client(
        service,
        region_name=settings.lake.s3_region,
        endpoint_url=settings.lake.s3_endpoint_url,
    )


def lake_from_settings(settings: Settings) -> Lake:
    """The local directory lake, or S3 via a saved prefect-aws block or the RISKOPS_LAKE_S3_*."""
    lake = _lake(settings)
    lake.reopen = partial(lake_from_settings, settings)  # e.g. in the decision-log writer
    return lake


def _lake(settings: Settings) -> Lake:
    if settings.lake.backend == "local":
        return LocalLake(settings.lake_root)
    if settings.lake.s3_block:
        from prefect_aws import S3Bucket

        block = S3Bucket.load(settings.lake.s3_block)
        client = block.credentials.get_s3_client()
        return S3Lake(client, block.bucket_name, block.bucket_folder or settings.lake.s3_prefix)
    return S3Lake(
        s3_client_from_settings(settings), settings.lake.s3_bucket, settings.lake.s3_prefix
    )
