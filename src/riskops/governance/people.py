"""Who is behind a model version: the principals a four-eyes approver must differ from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import Session, select

from riskops import catalog
from riskops.identity.principals import get_principal, principal_for_mlflow_user
from riskops.records import DatasetVersion, LandingClaim, ModelSpecRecord

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


@dataclass(frozen=True)
class People:
    """Principals behind a version, and what could not be attributed to anyone."""

    developers: tuple[str, ...]
    unknown: tuple[str, ...]  # e.g. "who landed credit-scoring-1a2b… (no authenticated landing)"
    roles: tuple[tuple[str, str], ...] = ()  # (principal, what they did)

    def involves(self, name: str) -> bool:
        return name in self.developers


def _onboarder(session: Session, model: str, spec_hash: str | None) -> str | None:
    query = select(ModelSpecRecord).where(ModelSpecRecord.name == model)
    if spec_hash:
        query = query.where(ModelSpecRecord.spec_hash == spec_hash)
    record = session.exec(query.order_by(ModelSpecRecord.id.desc())).first()  # type: ignore[union-attr]
    if record is None or not record.onboarded_by:
        return None
    return record.onboarded_by if get_principal(session=session, name=record.onboarded_by) else None


def _run_user(client: MlflowClient | None, model: str, version: str) -> tuple[str | None, str]:
    """The MLflow user of the run behind a version ('' run id when it has none)."""
    if client is None:
        return None, ""
    mv = client.get_model_version(model, version)
    if not mv.run_id:
        return None, ""
    return client.get_run(mv.run_id).info.user_id or None, mv.run_id


def people_behind(
    *, session: Session, client: MlflowClient | None, model: str, version: str
) -> People:
    """Who landed the data, onboarded the spec and registered the version (as principals).

    Pipeline versions: the principals who landed the dataset (authenticated `riskops land`)
    and onboarded its spec. Notebook versions: the MLflow run's user mapped to a principal,
    and the onboarder of the current spec. Anything that cannot be attributed is listed in
    ``unknown``, and a high-risk approval is then refused.
    """
    record = catalog.get_model_version(session=session, model=model, version=version)
    found: list[tuple[str, str]] = []
    unknown: list[str] = []
    spec_hash: str | None = None
    if record is not None and record.source == "pipeline" and record.dataset_version_id:
        dataset = session.get(DatasetVersion, record.dataset_version_id)
        if dataset is not None:
            spec_hash = dataset.spec_hash
            claims = session.exec(
                select(LandingClaim).where(
                    LandingClaim.model == model, LandingClaim.sha256 == dataset.sha256
                )
            ).all()
            found += [(claim.principal, f"landed {dataset.id}") for claim in claims]
            if not claims:
                unknown.append(
                    f"who landed {dataset.id} (the file reached the landing zone without an "
                    "authenticated `riskops land`)"
                )
    else:
        user, run_id = _run_user(client, model, version)
        principal = principal_for_mlflow_user(session=session, user=user)
        if principal is not None:
            found.append((principal.name, f"registered v{version} from MLflow run {run_id}"))
        else:
            unknown.append(
                f"who registered v{version}: MLflow run {run_id or '(none)'} user "
                f"{user or '(none)'!r} is not mapped to a principal (`riskops principals add "
                f"NAME --role model-developer --mlflow-user {user or 'USER'}`)"
            )
    onboarder = _onboarder(session, model, spec_hash)
    if onboarder:
        found.append((onboarder, "onboarded the spec"))
    else:
        unknown.append(f"who onboarded the spec of {model} (not an authenticated principal)")
    names = tuple(dict.fromkeys(name for name, _ in found))
    return People(names, tuple(unknown), tuple(found))
