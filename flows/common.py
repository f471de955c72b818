"""What every flow shares: deliver the outbox events its stage committed."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from prefect import get_run_logger

from riskops import outbox
from riskops.platform import Platform


def deliver_events(platform: Platform, ids: Sequence[str | None] | None) -> None:
    """Send the stage's outbox events now (``None``: every pending one); a failure leaves
    them for the watcher's sweep."""
    wanted = None if ids is None else [event_id for event_id in ids if event_id]
    if wanted == []:
        return
    # The events client runs its own event loop: give it a thread that has none.
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            pool.submit(outbox.deliver, platform.engine, ids=wanted).result()
        except Exception as error:
            get_run_logger().warning(
                "events %s are committed but not delivered yet (%s); the watcher retries them",
                ", ".join(wanted or ["(all pending)"]),
                error,
            )
