"""Create or update the MLflow registry webhook that points at the riskops bridge."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.webhook import Webhook

DEFAULT_NAME = "riskops-bridge"
EVENTS: list[str] = ["model_version.created"]
DESCRIPTION = "riskops: model_version.created -> riskops.model.registered (riskops.webhooks)"


def find_webhook(client: MlflowClient, name: str) -> Webhook | None:
    """The first webhook called ``name``, walking every page of the listing."""
    page_token: str | None = None
    while True:
        page = client.list_webhooks(max_results=100, page_token=page_token)
        for webhook in page:
            if webhook.name == name:
                return webhook
        page_token = page.token
        if not page_token:
            return None


def ensure_webhook(client: MlflowClient, *, url: str, secret: str, name: str = DEFAULT_NAME) -> str:
    """Create the webhook, or bring the one named ``name`` up to date; returns its id.

    The secret is not readable back from MLflow, so an existing webhook is always updated
    (url, events, secret, status ACTIVE). A running MLflow server caches its webhook list per
    event for ``MLFLOW_WEBHOOK_CACHE_TTL`` seconds (60 by default), so a change can take that
    long to be used. The server must keep the same ``MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY``
    across restarts, or it can no longer read (nor deliver) webhooks with secrets.
    """
    from mlflow.exceptions import MlflowException

    if not secret:
        raise ValueError("refusing to register an unsigned webhook: secret is empty")
    try:
        existing = find_webhook(client, name)
    except MlflowException as exc:
        raise RuntimeError(
            f"could not list MLflow webhooks: {exc}. If the MLflow server was restarted "
            "without a fixed MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY (a Fernet key), it can no "
            "longer decrypt the stored webhook secrets: give the server a persistent key."
        ) from exc
    if existing is None:
        created = client.create_webhook(
            name=name,
            url=url,
            events=list(EVENTS),  # type: ignore[arg-type]
            description=DESCRIPTION,
            secret=secret,
            status="ACTIVE",
        )
        return created.webhook_id
    client.update_webhook(
        existing.webhook_id,
        url=url,
        events=list(EVENTS),  # type: ignore[arg-type]
        description=DESCRIPTION,
        secret=secret,
        status="ACTIVE",
    )
    return existing.webhook_id
