"""The watcher process: poll the local landing directory, or consume S3 notifications."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from riskops import outbox
from riskops.emit import send_confirmed
from riskops.lake.base import LANDING
from riskops.lake.factory import s3_client_from_settings
from riskops.lake.s3 import S3Lake
from riskops.landing.sqs import SqsNotifications
from riskops.landing.watcher import ConfirmedSender, DirectoryPoller, LandingWatcher
from riskops.platform import Platform
from riskops.settings import Settings

log = logging.getLogger("riskops.watcher")


def _poll_directory(watcher: LandingWatcher, poller: DirectoryPoller) -> int:
    handled = 0
    for key in poller.ready():
        sighting = watcher.handle(key)
        if sighting.action != "error":
            poller.done(key)
        handled += 1
    return handled


def _poll_queue(watcher: LandingWatcher, queue: SqsNotifications, lake: S3Lake) -> int:
    handled = 0
    for note in queue.receive():
        if note.keys is None:
            continue
        ok = True
        for object_key in note.keys:
            key = lake.key_of_object(object_key)
            if key is None or not key.startswith(LANDING + "/"):
                continue
            if not lake.exists(key):
                continue  # already moved on by an earlier delivery of the same notification
            ok = watcher.handle(key).action != "error" and ok
            handled += 1
        if ok:
            queue.ack(note)
    return handled


def heartbeat_file(settings: Settings) -> Path:
    """Touched on every round; `riskops status` calls the watcher unhealthy when it goes stale."""
    return settings.home_dir / "run" / "watcher.heartbeat"


def run_watcher(
    settings: Settings,
    *,
    stop: threading.Event | None = None,
    send: ConfirmedSender = send_confirmed,
    max_loops: int | None = None,
) -> None:
    """Watch the landing zone until ``stop`` is set (or ``max_loops`` rounds have run)."""
    beat = heartbeat_file(settings)
    beat.parent.mkdir(parents=True, exist_ok=True)
    stop = stop or threading.Event()
    platform = Platform.from_settings(settings, with_secrets=False)
    lake, engine = platform.lake, platform.engine
    watcher = LandingWatcher(lake=lake, engine=engine, send=send)
    queue = None
    if isinstance(lake, S3Lake) and settings.lake.sqs_queue_url:
        queue = SqsNotifications(
            s3_client_from_settings(settings, "sqs"),
            settings.lake.sqs_queue_url,
            lake.bucket,
            wait_seconds=settings.watcher.sqs_wait_seconds,
        )
    poller = DirectoryPoller(lake, settings.watcher.settle_seconds)
    log.info("watching %r (%s)", lake, "SQS notifications" if queue else "polling")
    loops = 0
    while not stop.is_set():
        beat.touch()
        watcher.flush_pending()
        try:  # events a stage committed but could not deliver (the outbox sweep)
            outbox.deliver(engine, send=send)
        except Exception as error:
            log.warning("outbox sweep failed, retrying: %s", error)
        try:
            if queue is not None and isinstance(lake, S3Lake):
                _poll_queue(watcher, queue, lake)
            else:
                _poll_directory(watcher, poller)
        except Exception as error:  # e.g. the bucket or queue is unreachable for a moment
            log.warning("landing zone poll failed, retrying: %s", error)
        loops += 1
        if max_loops is not None and loops >= max_loops:
            break
        if queue is None:
            stop.wait(settings.watcher.poll_seconds)
    platform.close()
