"""S3 event notifications delivered through SQS (directly or wrapped by SNS)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

log = logging.getLogger("riskops.watcher.sqs")


@dataclass(frozen=True)
class Notification:
    receipt_handle: str
    # Object keys (URL-decoded) of ObjectCreated records; empty for test events; None when the
    # message could not be parsed (left on the queue for its redrive policy / dead-letter queue).
    keys: list[str] | None


def parse_s3_notification(body: str, bucket: str) -> list[str]:
    """Object keys created in ``bucket`` according to one SQS message body.

    Handles the ``s3:TestEvent`` S3 sends when notifications are configured (no Records),
    SNS envelopes, and URL-encoded keys (``a%2Fb.csv``, ``+`` for spaces), as on AWS.
    """
    message = json.loads(body)
    if "Message" in message and message.get("Type") == "Notification":
        message = json.loads(message["Message"])
    if message.get("Event") == "s3:TestEvent":
        return []
    keys = []
    for record in message.get("Records", []):
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record.get("s3", {})
        if s3.get("bucket", {}).get("name") != bucket:
            log.warning("notification for another bucket %s ignored", s3.get("bucket"))
            continue
        keys.append(unquote_plus(s3["object"]["key"]))
    return keys


class SqsNotifications:
    """Long-poll an SQS queue for S3 notifications; delete a message only once handled."""

    def __init__(self, client: Any, queue_url: str, bucket: str, wait_seconds: int = 5) -> None:
        self.client = client
        self.queue_url = queue_url
        self.bucket = bucket
        self.wait_seconds = wait_seconds

    def receive(self, max_messages: int = 10) -> list[Notification]:
        response = self.client.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=self.wait_seconds,
        )
        notes = []
        for message in response.get("Messages", []):
            try:
                keys = parse_s3_notification(message["Body"], self.bucket)
            except (ValueError, KeyError, TypeError) as error:
                log.error(
                    "SQS message %s is not an S3 notification (%s); left for the dead-letter queue",
                    message.get("MessageId"),
                    error,
                )
                keys = None
            notes.append(Notification(message["ReceiptHandle"], keys))
        return notes

    def ack(self, note: Notification) -> None:
        self.client.delete_message(QueueUrl=self.queue_url, ReceiptHandle=note.receipt_handle)
