"""The model spec (DESIGN.md section 5, a contract): one YAML file onboards one model."""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

Name = Annotated[str, Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=63)]
Label = str | int | bool


class SpecError(ValueError):
    """A spec was refused; ``problems`` lists (field path, what is wrong)."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {path}: {message}" for path, message in problems)
        super().__init__(f"spec {source} refused:\n{lines}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Features(_Strict):
    numeric: list[str] = Field(default_factory=list, description="Numeric feature columns.")
    categorical: list[str] = Field(default_factory=list, description="Categorical columns.")


class ColumnRule(_Strict):
    """Contract for one column beyond its type."""

    min: float | None = None
    max: float | None = None
    max_null_rate: float | None = Field(default=None, ge=0, le=1)
    allowed: list[str] | None = Field(
        default=None, description="Closed set of categories; anything else is a violation."
    )


class Gates(_Strict):
    min_auc: float | None = Field(default=None, ge=0, le=1)
    min_ks: float | None = Field(default=None, ge=0, le=1)
    max_auc_drop_vs_champion: float | None = Field(default=None, ge=0, le=1)
    max_score_psi_vs_champion: float | None = Field(default=None, ge=0)
    min_disparate_impact: float | None = Field(default=None, ge=0, le=1)
    max_equal_opportunity_difference: float | None = Field(
        default=None, ge=0, le=1, description="Largest gap in true-positive rate across groups."
    )
    max_p99_latency_ms: float | None = Field(default=None, gt=0)
    waivers: dict[str, str] = Field(
        default_factory=dict,
        description="Gate name -> written reason: for high-risk models an unmeasurable gate "
        "fails unless waived here (the reason appears on the card and in the audit).",
    )

    @field_validator("waivers")
    @classmethod
    def _reasoned(cls, value: dict[str, str]) -> dict[str, str]:
        short = sorted(gate for gate, why in value.items() if len(why.strip()) < 20)
        if short:
            raise ValueError(f"a waiver needs a written reason of 20+ characters: {short}")
        return value


class FeatureDriftThresholds(_Strict):
    """Drift thresholds of one feature; a field left unset takes the model-level value."""

    psi_warn: float | None = Field(default=None, ge=0)
    psi_alert: float | None = Field(default=None, ge=0)
    null_rate_warn: float | None = Field(default=None, ge=0, le=1)
    null_rate_alert: float | None = Field(default=None, ge=0, le=1)
    new_category_warn: float | None = Field(default=None, ge=0, le=1)
    new_category_alert: float | None = Field(default=None, ge=0, le=1)


_DRIFT_KINDS = ("psi", "null_rate", "new_category")


class Monitoring(_Strict):
    psi_warn: float = Field(default=0.10, ge=0)
    psi_alert: float = Field(default=0.25, ge=0)
    min_rows: int = Field(default=500, ge=1)
    confidence: float = Field(
        default=0.99,
        gt=0.5,
        lt=1,
        description="Confidence of the sample-size-aware critical values (PSI, null-rate z-test) "
        "a band must also exceed, so that small windows do not cry wolf.",
    )
    null_rate_warn: float = Field(default=0.02, ge=0, le=1)
    null_rate_alert: float = Field(default=0.05, ge=0, le=1)
    new_category_warn: float = Field(
        default=0.01, ge=0, le=1, description="Share of rows in categories the reference lacks."
    )
    new_category_alert: float = Field(default=0.05, ge=0, le=1)
    bins: int = Field(default=10, ge=2, le=100, description="Quantile bins of the reference.")
    max_categories: int = Field(
        default=20, ge=1, description="Frequent categories compared one by one; the rest pool."
    )
    features: dict[str, FeatureDriftThresholds] = Field(
        default_factory=dict,
        description="Per-feature overrides, by model input (a spec feature, a derived feature of "
        "the family, or 'score' for prediction drift).",
    )
    retrain_cooldown_hours: float = Field(default=24, ge=0)
    retrain_schedule: str | None = Field(
        default=None,
        description="Cron (UTC) of scheduled retraining, e.g. '0 3 1 * *'; it goes through the "
        "same gate and cooldown as drift-triggered retraining. None: retrain on drift only.",
    )
    max_auc_drop_on_outcomes: float = Field(
        default=0.03,
        ge=0,
        le=1,
        description="Largest drop of realised AUC on labelled outcomes below the validation AUC "
        "before riskops.performance.degraded is emitted.",
    )

    @field_validator("retrain_schedule")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # Prefect's own validator: the schedule this becomes must be one Prefect accepts.
        from prefect.client.schemas.schedules import CronSchedule

        try:
            CronSchedule(cron=value, timezone="UTC")
        except ValidationError as error:
            raise ValueError(
                f"{value!r} is not a cron Prefect accepts ({error.errors()[0]['msg']}); write "
                "5 fields (minute hour day month weekday), e.g. '0 3 1 * *'"
            ) from None
        return value

    @model_validator(mode="after")
    def _bands(self) -> Monitoring:
        for kind in _DRIFT_KINDS:
            if getattr(self, f"{kind}_warn") > getattr(self, f"{kind}_alert"):
                raise ValueError(f"{kind}_warn must not exceed {kind}_alert")
        for name, override in self.features.items():
            for kind in _DRIFT_KINDS:
                warn = getattr(override, f"{kind}_warn")
                alert = getattr(override, f"{kind}_alert")
                warn = getattr(self, f"{kind}_warn") if warn is None else warn
                alert = getattr(self, f"{kind}_alert") if alert is None else alert
                if warn > alert:
                    raise ValueError(
                        f"features.{name}: {kind}_warn ({warn}) exceeds {kind}_alert ({alert}) "
                        "once the model-level values fill in what the override leaves unset"
                    )
        return self


LATENCY_THRESHOLDS_MS = (5, 10, 20, 30, 50, 100, 250, 500, 1000)  # histogram bucket edges


class Slo(_Strict):
    """Service-level objectives of this model's scoring endpoint (issue 10).

    A request is good for latency when answered within ``latency_threshold_ms``, and good for
    errors when it did not fail inside the service (5xx). Alert rules burn these budgets over
    ``window_days`` (multi-window multi-burn-rate); a breach emits ``riskops.sla.breached``.
    """

    latency_threshold_ms: float = Field(
        default=50,
        description="Latency a request must be answered within to count as good; one of the "
        "service's histogram bucket edges so that Prometheus can count it exactly.",
    )
    latency_objective: float = Field(
        default=0.99, gt=0, lt=1, description="Share of requests within the latency threshold."
    )
    availability_objective: float = Field(
        default=0.999, gt=0, lt=1, description="Share of requests answered without a 5xx."
    )
    window_days: int = Field(default=28, ge=1, le=90, description="The SLO's rolling window.")

    @field_validator("latency_threshold_ms")
    @classmethod
    def _bucket_edge(cls, value: float) -> float:
        if value not in LATENCY_THRESHOLDS_MS:
            edges = ", ".join(str(edge) for edge in LATENCY_THRESHOLDS_MS)
            raise ValueError(
                f"{value} ms is not a latency histogram bucket edge; choose one of {edges}"
            )
        return value


class Decision(_Strict):
    """Decision bands on the score (probability of the bad outcome); fairness uses the cut-off."""

    approve_below: float | None = Field(default=None, gt=0, lt=1)
    decline_at_or_above: float | None = Field(default=None, gt=0, le=1)
    target_approval_rate: float | None = Field(
        default=None, gt=0, le=1, description="Used for the cut-off when no score band is set."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Decision:
        low, high = self.approve_below, self.decline_at_or_above
        if low is not None and high is not None and low > high:
            raise ValueError("approve_below must not exceed decline_at_or_above")
        return self


class DataContract(_Strict):
    """Whole-file rules of the contract check."""

    id_column: str | None = Field(default=None, description="Must be unique when given.")
    max_null_rate: float | None = Field(default=None, ge=0, le=1)
    allow_duplicate_rows: bool = False
    min_rows: int = Field(default=1, ge=1)


class Monotonic(_Strict):
    feature: str
    direction: Literal["increasing", "decreasing"]


class ModelSpec(_Strict):
    """One model, declared in YAML; nothing in the code is specific to one model."""

    name: Name
    family: Literal["credit_scoring", "fraud_detection", "transaction_risk", "other"]
    risk_class: Literal["high", "limited", "minimal"]
    owner: str = Field(min_length=1)
    intended_use: str = Field(min_length=1)
    target: str = Field(min_length=1)
    positive_label: Label = 1
    target_values: list[Label] | None = Field(
        default=None, description="The two target values; default [0, 1] for 0/1 labels."
    )
    entity_column: str | None = None
    timestamp_column: str | None = None
    features: Features
    protected_attributes: list[str] = Field(default_factory=list)
    columns: dict[str, ColumnRule] = Field(default_factory=dict)
    data: DataContract = Field(default_factory=DataContract)
    monotonic: list[Monotonic] = Field(default_factory=list)
    gates: Gates = Field(default_factory=Gates)
    decision: Decision = Field(default_factory=Decision)
    outcome_window_days: int | None = Field(
        default=None,
        ge=0,
        le=3650,
        description="Horizon of the target: the embargo left between training and holdout rows.",
    )
    monitoring: Monitoring = Field(default_factory=Monitoring)
    slo: Slo = Field(default_factory=Slo)

    @field_validator("features")
    @classmethod
    def _some_features(cls, value: Features) -> Features:
        if not value.numeric and not value.categorical:
            raise ValueError("declare at least one numeric or categorical feature")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        feats = self.feature_columns
        dupes = sorted({c for c in feats if feats.count(c) > 1})
        if dupes:
            raise ValueError(f"features listed twice: {dupes}")
        if self.target in feats:
            raise ValueError(f"target {self.target!r} is also listed as a feature (leakage)")
        known = set(self.required_columns) | set(self.protected_attributes)
        unknown_rules = sorted(set(self.columns) - known)
        if unknown_rules:
            raise ValueError(f"columns rules name columns the spec does not use: {unknown_rules}")
        if self.data.id_column and self.data.id_column not in known:
            raise ValueError(f"data.id_column {self.data.id_column!r} is not a spec column")
        self._drift_features_known()
        for rule in self.monotonic:
            if rule.feature not in self.features.numeric:
                raise ValueError(f"monotonic feature {rule.feature!r} is not a numeric feature")
        values = self.resolved_target_values
        if len(values) != 2 or values[0] == values[1]:
            raise ValueError(f"target_values must be two distinct values, got {values}")
        if self.positive_label not in values:
            raise ValueError(
                f"positive_label {self.positive_label!r} not in target_values {values}"
            )
        return self

    def _drift_features_known(self) -> None:
        from riskops.features.families import derived_features

        known = {*self.feature_columns, *(d.name for d in derived_features(self.family)), "score"}
        unknown = sorted(set(self.monitoring.features) - known)
        if unknown:
            raise ValueError(
                f"monitoring.features names {unknown}, which the model does not have; use a "
                f"spec feature, a derived feature of family {self.family!r} or 'score'"
            )

    @property
    def resolved_target_values(self) -> list[Label]:
        if self.target_values is not None:
            return list(self.target_values)
        if self.positive_label in (0, 1) and not isinstance(self.positive_label, bool):
            return [0, 1]
        raise ValueError(
            f"target_values is required when positive_label is {self.positive_label!r} "
            "(only 0/1 labels have a default)"
        )

    @property
    def feature_columns(self) -> list[str]:
        return [*self.features.numeric, *self.features.categorical]

    @property
    def required_columns(self) -> list[str]:
        """Every column a landed file must carry, in a stable order."""
        extra = [self.entity_column, self.timestamp_column, self.data.id_column]
        cols = [*self.feature_columns, self.target, *self.protected_attributes]
        cols += [c for c in extra if c]
        return list(dict.fromkeys(cols))

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def spec_hash(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()


def _did_you_mean(loc: tuple[Any, ...], model: type[BaseModel]) -> str:
    """Suggest the closest field name for an unknown key, walking nested models."""
    target: Any = model
    for part in loc[:-1]:
        fields = getattr(target, "model_fields", None)
        if not fields or part not in fields:
            return ""
        target = fields[part].annotation
    fields = getattr(target, "model_fields", None)
    if not fields:
        return ""
    match = difflib.get_close_matches(str(loc[-1]), list(fields), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _problems(error: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for item in error.errors():
        loc = tuple(item["loc"])
        path = ".".join(str(p) for p in loc) or "(spec)"
        if item["type"] == "extra_forbidden":
            message = "unknown field" + _did_you_mean(loc, ModelSpec)
        elif item["type"] == "missing":
            message = "required field is missing"
        else:
            message = item["msg"].removeprefix("Value error, ")
            if "input" in item and item["type"] != "value_error":
                message += f" (got {item['input']!r})"
        problems.append((path, message))
    return problems


def parse_spec(data: Any, source: str = "<spec>") -> ModelSpec:
    """Validate a spec given as a mapping; raises :class:`SpecError` naming each bad field."""
    if not isinstance(data, dict):
        raise SpecError(source, [("(spec)", f"expected a mapping, got {type(data).__name__}")])
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as error:
        raise SpecError(source, _problems(error)) from None


def load_spec(path: Path | str) -> ModelSpec:
    """Read and validate a spec YAML file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SpecError(str(path), [("(file)", f"cannot read: {error}")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise SpecError(str(path), [("(yaml)", str(error).replace("\n", " "))]) from None
    return parse_spec(data, str(path))
