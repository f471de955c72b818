"""Per model version: the code, the image, the data and the people behind it, in one record.

The platform DB gives the walk back to the data (feature set → dataset version → landed file)
and the sign-offs; the MLflow registry gives the tags training set on the version: the git commit
(``riskops.git_commit``) and the image digest (``riskops.image_digest``). A version trained
before these tags existed, or registered outside riskops, says ``not recorded``.
"""

from __future__ import annotations

from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlmodel import Session

from riskops import catalog
from riskops.governance.signoff import decisions_for
from riskops.training.lineage import TAG_PREFIX

NOT_RECORDED = "not recorded"
NOT_READ = "not read (no MLflow client given)"


def _approvals(session: Session, model: str, version: str) -> list[dict[str, Any]]:
    return [
        {
            "approver": r.approver,
            "role": r.approver_role,
            "verified": r.verified,
            "channel": r.channel,
            "decided_at": r.decided_at.isoformat(),
        }
        for r in decisions_for(session=session, model=model, version=version)
        if r.accepted and r.decision == "approve"
    ]


def version_provenance(
    *, session: Session, client: MlflowClient | None, model: str, version: str
) -> dict[str, Any]:
    """The lineage walk of ``model`` ``version`` plus code commit, image digest and approvals.

    Raises:
        LookupError: the version is not in the platform's catalogue.
    """
    walk = catalog.lineage_of_version(session=session, model=model, version=version)
    record, featureset = walk["model_version"], walk["feature_set"]
    dataset, landed = walk["dataset_version"], walk["landed"]
    tags: dict[str, str] = {}
    mlflow_error = None
    if client is not None:
        try:
            tags = dict(client.get_model_version(model, str(version)).tags or {})
        except (MlflowException, OSError) as error:
            mlflow_error = f"MLflow registry unavailable for {model} v{version}: {str(error)[:200]}"
    if client is None:
        unknown = NOT_READ
    else:
        unknown = "unavailable (MLflow not reachable)" if mlflow_error else NOT_RECORDED
    return {
        "model": model,
        "version": str(version),
        "code_commit": tags.get(f"{TAG_PREFIX}git_commit", unknown),
        "image_digest": tags.get(f"{TAG_PREFIX}image_digest", unknown),
        "dataset_version_id": dataset["id"] if dataset else None,
        "dataset_sha256": dataset["sha256"] if dataset else None,
        "landed_file": landed["filename"] if landed else None,
        "feature_set_version": featureset["version"] if featureset else None,
        "feature_set_code_version": featureset["code_version"] if featureset else None,
        "definitions_hash": featureset["definitions_hash"] if featureset else None,
        "run_id": record["run_id"],
        "trainer": record["trainer"],
        "source": record["source"],
        "approved_by": _approvals(session, model, str(version)),
        "mlflow_error": mlflow_error,
        **walk,  # the full records, as `riskops models lineage --version` always gave them
    }


def model_provenance(
    *, session: Session, client: MlflowClient | None, model: str
) -> list[dict[str, Any]]:
    """:func:`version_provenance` of every catalogued version of ``model``, oldest first."""
    return [
        version_provenance(session=session, client=client, model=model, version=v.version)
        for v in catalog.list_model_versions(session=session, model=model)
    ]
