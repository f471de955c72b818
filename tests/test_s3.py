"""The S3 path against moto's real S3 + SQS API over HTTP (bucket notifications included)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from riskops import events, ledger
from riskops.db import session_scope
from riskops.lake import S3Lake, landing_key
from riskops.landing.run import _poll_queue, run_watcher
from riskops.landing.sqs import SqsNotifications, parse_s3_notification
from riskops.landing.watcher import LandingWatcher
from riskops.settings import ContractSettings, load_settings
from riskops.stack.ports import free_port
from riskops.stages.contract import check_landed
from tests.helpers import CollectingSender
from tests.test_contracts import credit_frame

pytestmark = pytest.mark.s3
BUCKET = "riskops-test-lake"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    queue_url = sqs.create_queue(QueueName=f"landing-{time.monotonic_ns()}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": arn["Attributes"]["QueueArn"],
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {
                        "Key": {"FilterRules": [{"Name": "prefix", "Value": "lake/landing/"}]}
                    },
                }
            ]
        },
    )
    yield {"endpoint": moto_endpoint, "queue_url": queue_url}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=item["Key"])
    sqs.delete_queue(QueueUrl=queue_url)


@pytest.fixture
def lake(aws: dict[str, str]) -> S3Lake:
    return S3Lake(boto3.client("s3", endpoint_url=aws["endpoint"]), BUCKET, "lake")


def test_parse_test_event_and_url_encoded_keys():
    assert (
        parse_s3_notification(json.dumps({"Event": "s3:TestEvent", "Bucket": BUCKET}), BUCKET) == []
    )
    encoded = "lake/landing/credit-scoring/Q3+file%281%29.csv"
    record = {
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": BUCKET}, "object": {"key": encoded}},
    }
    body = json.dumps({"Records": [record]})
    assert parse_s3_notification(body, BUCKET) == ["lake/landing/credit-scoring/Q3 file(1).csv"]
    sns = json.dumps({"Type": "Notification", "Message": body})
    assert parse_s3_notification(sns, BUCKET) == ["lake/landing/credit-scoring/Q3 file(1).csv"]
    removed = {"Records": [dict(record, eventName="ObjectRemoved:Delete")]}
    assert parse_s3_notification(json.dumps(removed), BUCKET) == []


def test_s3_lake_round_trip(lake: S3Lake, tmp_path: Path):
    source = tmp_path / "a b.csv"
    source.write_text("x\n1\n")
    uri = lake.put_file("landing/m/a b.csv", source)
    assert (
        uri == f"s3://{BUCKET}/lake/landing/m/a b.csv" and lake.key_of(uri) == "landing/m/a b.csv"
    )
    assert [o.key for o in lake.list("landing")] == ["landing/m/a b.csv"]
    with lake.local_copy("landing/m/a b.csv") as path:
        assert path.read_text() == "x\n1\n"
    lake.move("landing/m/a b.csv", "quarantine/m/a b.csv")
    assert not lake.exists("landing/m/a b.csv") and lake.exists("quarantine/m/a b.csv")


def test_notifications_drive_the_watcher_exactly_once(lake, aws, engine, credit_spec, tmp_path):
    with session_scope(engine) as session:
        ledger.register_spec(session=session, spec=credit_spec)
    good = tmp_path / "Q3 applications (final).csv"
    credit_frame().to_csv(good, index=False)
    for _ in range(3):  # the same content three times: one announcement
        lake.put_file(landing_key("credit-scoring", good.name), good)
    sender = CollectingSender()
    watcher = LandingWatcher(lake=lake, engine=engine, send=sender)
    sqs = boto3.client("sqs", endpoint_url=aws["endpoint"])
    queue = SqsNotifications(sqs, aws["queue_url"], BUCKET, wait_seconds=1)
    for _ in range(5):
        _poll_queue(watcher, queue, lake)
    assert sender.names == [events.DATA_LANDED]
    payload = sender.sent[0][0].payload
    assert payload["uri"] == f"s3://{BUCKET}/lake/landing/credit-scoring/{good.name}"
    remaining = sqs.get_queue_attributes(
        QueueUrl=aws["queue_url"], AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert remaining["Attributes"]["ApproximateNumberOfMessages"] == "0"  # test event acked too

    outcome = check_landed(
        lake=lake, engine=engine, model="credit-scoring", uri=payload["uri"],
        sha256=payload["sha256"], filename=good.name, contract=ContractSettings(),
    )  # fmt: skip
    assert outcome.accepted
    assert (
        outcome.dataset_uri
        == f"s3://{BUCKET}/lake/datasets/credit-scoring/{payload['sha256']}/data.parquet"
    )
    assert not lake.exists(landing_key("credit-scoring", good.name))


def test_run_watcher_from_settings_on_s3(aws, settings, monkeypatch, tmp_path, credit_spec, engine):
    monkeypatch.setenv("RISKOPS_LAKE_BACKEND", "s3")
    monkeypatch.setenv("RISKOPS_LAKE_S3_BUCKET", BUCKET)
    monkeypatch.setenv("RISKOPS_LAKE_S3_PREFIX", "lake")
    monkeypatch.setenv("RISKOPS_LAKE_S3_ENDPOINT_URL", aws["endpoint"])
    monkeypatch.setenv("RISKOPS_LAKE_SQS_QUEUE_URL", aws["queue_url"])
    monkeypatch.setenv("RISKOPS_WATCHER_SQS_WAIT_SECONDS", "1")
    s3_settings = load_settings()
    s3 = boto3.client("s3", endpoint_url=aws["endpoint"])
    s3.put_object(Bucket=BUCKET, Key="lake/landing/credit-scoring/one.csv", Body=b"a,b\n1,2\n")
    sender = CollectingSender()
    run_watcher(s3_settings, send=sender, max_loops=3)
    assert sender.names == [events.DATA_LANDED]
    assert sender.sent[0][0].payload["filename"] == "one.csv"


def test_s3_trees_round_trip_with_manifest_last(lake: S3Lake, tmp_path: Path):
    tree = tmp_path / "fs"
    (tree / "data" / "d=1").mkdir(parents=True)
    (tree / "data" / "d=1" / "p.parquet").write_bytes(b"abc")
    (tree / "manifest.json").write_text("{}")
    calls: list[str] = []
    original = lake.put_file
    lake.put_file = lambda key, path: calls.append(key) or original(key, path)  # type: ignore[method-assign]
    lake.put_tree("featuresets/m/v1", tree, last="manifest.json")
    assert calls[-1] == "featuresets/m/v1/manifest.json"
    with lake.local_tree("featuresets/m/v1") as local:
        assert (local / "data" / "d=1" / "p.parquet").read_bytes() == b"abc"
