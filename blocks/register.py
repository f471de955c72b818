"""Register riskops block types and save the platform block from settings.

Run by `riskops up` as `python -m blocks.register` (the library never imports this layer).
"""

from __future__ import annotations

from prefect_aws import AwsCredentials, S3Bucket
from prefect_aws.client_parameters import AwsClientParameters
from prefect_slack import SlackWebhook

from blocks.platform import PLATFORM_BLOCK, PSEUDONYM_SECRET_BLOCK, RiskopsPlatform
from riskops.monitoring.slack import SLACK_BLOCK
from riskops.secrets import governance_public_key, pseudonym_key
from riskops.settings import Settings, load_settings


def _s3_bucket(settings: Settings) -> S3Bucket:
    if settings.lake.s3_block:
        return S3Bucket.load(settings.lake.s3_block)
    return S3Bucket(
        bucket_name=settings.lake.s3_bucket,
        bucket_folder=settings.lake.s3_prefix,
        credentials=AwsCredentials(
            region_name=settings.lake.s3_region,
            aws_client_parameters=AwsClientParameters(endpoint_url=settings.lake.s3_endpoint_url),
        ),
    )


def block_spark_remote(settings: Settings) -> str | None:
    """The Connect URL the platform block records: only a remote chosen by the operator (a
    cluster's endpoint). The embedded stack's own server reaches flow runs through
    RISKOPS_SPARK_REMOTE (stack_env), so that switching it off needs no re-registration."""
    remote = settings.spark.remote
    return None if remote == settings.spark.local_connect_url() else remote


def save_platform_block(settings: Settings) -> RiskopsPlatform:
    """Register the block type and save the `riskops-platform` document the flows load."""
    from prefect.blocks.system import Secret

    RiskopsPlatform.register_type_and_schema()
    # The key apart from the configuration: a Secret block of its own.
    Secret(value=pseudonym_key(settings)).save(PSEUDONYM_SECRET_BLOCK, overwrite=True)
    block = RiskopsPlatform(
        database_url=settings.database_url,
        lake_backend=settings.lake.backend,
        lake_root=str(settings.lake_root) if settings.lake.backend == "local" else None,
        s3_bucket=_s3_bucket(settings) if settings.lake.backend == "s3" else None,
        mlflow_tracking_uri=settings.mlflow.resolved_tracking_uri(),
        governance_public_key=governance_public_key(settings),
        governance_url=settings.governance.resolved_url(),
        spark_master=settings.spark.master,
        spark_driver_memory=settings.spark.driver_memory,
        spark_driver_cores=settings.spark.driver_cores,
        spark_executor_memory=settings.spark.executor_memory,
        spark_executor_cores=settings.spark.executor_cores,
        spark_executor_instances=settings.spark.executor_instances,
        spark_shuffle_partitions=settings.spark.shuffle_partitions,
        batch_chunk_rows=settings.scoring.batch_chunk_rows,
        spark_remote=block_spark_remote(settings),
    )
    block.save(PLATFORM_BLOCK, overwrite=True)
    return block


def save_slack_block(settings: Settings) -> SlackWebhook:
    """Save the `riskops-slack` webhook block the alert automations post through.

    Its URL is RISKOPS_SLACK_WEBHOOK_URL; unset (the embedded defaults), the local receiver
    that `riskops up` starts, which prints each message and keeps it under the state directory.
    """
    block = SlackWebhook(url=settings.slack.block_url())
    block.save(SLACK_BLOCK, overwrite=True)
    return block


def main() -> None:
    settings = load_settings()
    save_platform_block(settings)
    print(f"saved block {PLATFORM_BLOCK} ({settings.lake.backend} lake)")
    save_slack_block(settings)
    where = "RISKOPS_SLACK_WEBHOOK_URL" if settings.slack.webhook_url else "the local receiver"
    print(f"saved block {SLACK_BLOCK} (posts to {where})")


if __name__ == "__main__":
    main()
