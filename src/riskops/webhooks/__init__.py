"""Bridge MLflow registry webhooks into riskops events (`riskops.model.registered`)."""

from riskops.webhooks.signature import InvalidSignature, sign_like_mlflow, verify_mlflow_signature

__all__ = ["InvalidSignature", "sign_like_mlflow", "verify_mlflow_signature"]
