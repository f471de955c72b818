"""Settings of the MLflow webhook bridge (``RISKOPS_WEBHOOK_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class WebhookSettings(BaseSettings):
    """Where the bridge listens, the shared secret, and where MLflow should deliver."""

    model_config = SettingsConfigDict(env_prefix="RISKOPS_WEBHOOK_", extra="ignore", env_file=None)

    host: str = Field(default="127.0.0.1", description="Interface the bridge binds to.")
    port: int = Field(default=5002, description="Port the bridge listens on.")
    secret: SecretStr | None = Field(
        default=None,
        description="HMAC secret shared with the MLflow webhook (required).",
    )
    tolerance_seconds: int = Field(
        default=300, description="Oldest delivery timestamp accepted (replay protection)."
    )
    register_url: str | None = Field(
        default=None,
        description="If set, create/update the MLflow webhook to deliver to this URL at start "
        "(e.g. http://127.0.0.1:5002/mlflow/webhook).",
    )

    def required_secret(self) -> str:
        """The secret, or a clear error naming RISKOPS_WEBHOOK_SECRET."""
        value = self.secret.get_secret_value() if self.secret else ""
        if not value:
            raise ValueError(
                "RISKOPS_WEBHOOK_SECRET is not set: the bridge refuses unsigned MLflow deliveries. "
                "Set it to the secret of the MLflow webhook (riskops.webhooks.register)."
            )
        return value
