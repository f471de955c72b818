"""Which derived features each model family gets, declared once for Spark and pandas.

Column names follow the family's data (see ``riskops.synthetic``); a feature whose inputs are
absent from a dataset is skipped by the plan, which records why.
"""

from __future__ import annotations

from riskops.features.definitions import (
    Bucket,
    DayOfWeek,
    Definition,
    HourOfDay,
    Log1p,
    Ratio,
    SincePrevious,
    Velocity,
    validate,
)

HOUR, DAY, WEEK = 3_600, 86_400, 7 * 86_400
WINDOWS = (("1h", HOUR), ("24h", DAY), ("7d", WEEK))


def velocity_set(
    *,
    entity: str,
    entity_label: str,
    other: str,
    other_label: str,
    timestamp: str,
    amount: str,
) -> tuple[Definition, ...]:
    """Count/sum/max of ``amount`` per entity and per counterpart over 1h, 24h, 7d, plus
    distinct counterparts per entity over 24h and seconds since the entity's previous row."""
    out: list[Definition] = []
    for key, label in ((entity, entity_label), (other, other_label)):
        for suffix, seconds in WINDOWS:
            out += [
                Velocity(f"{label}_txn_count_{suffix}", key, "count", None, seconds, timestamp),
                Velocity(f"{label}_{amount}_sum_{suffix}", key, "sum", amount, seconds, timestamp),
                Velocity(f"{label}_{amount}_max_{suffix}", key, "max", amount, seconds, timestamp),
            ]
    out.append(
        Velocity(
            f"{entity_label}_distinct_{other_label}s_24h", entity, "distinct", other, DAY, timestamp
        )
    )
    out.append(SincePrevious(f"{entity_label}_seconds_since_previous", entity, timestamp))
    return tuple(out)


_CREDIT: tuple[Definition, ...] = (
    Ratio("loan_to_income", "loan_amount", "income"),
    Ratio("loan_per_term_month", "loan_amount", "term_months"),
    Log1p("log_income", "income"),
    Log1p("log_loan_amount", "loan_amount"),
    Bucket("income_bucket", "income", (10_000, 20_000, 35_000, 50_000, 75_000, 100_000, 150_000)),
    Bucket("dti_bucket", "debt_to_income", (0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0)),
    Bucket("utilisation_bucket", "credit_utilisation", (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)),
)

_FRAUD: tuple[Definition, ...] = (
    Log1p("log_amount", "amount"),
    HourOfDay("hour_of_day", "event_time"),
    DayOfWeek("day_of_week", "event_time"),
    *velocity_set(
        entity="card_id",
        entity_label="card",
        other="merchant_id",
        other_label="merchant",
        timestamp="event_time",
        amount="amount",
    ),
)

_TRANSACTION: tuple[Definition, ...] = (
    Log1p("log_amount", "amount"),
    Ratio("amount_to_balance", "amount", "account_balance"),
    HourOfDay("hour_of_day", "event_time"),
    *velocity_set(
        entity="account_id",
        entity_label="account",
        other="counterparty_id",
        other_label="counterparty",
        timestamp="event_time",
        amount="amount",
    ),
)

FAMILY_FEATURES: dict[str, tuple[Definition, ...]] = {
    "credit_scoring": _CREDIT,
    "fraud_detection": _FRAUD,
    "transaction_risk": _TRANSACTION,
    "other": (),
}


def derived_features(family: str) -> tuple[Definition, ...]:
    """The derived feature definitions of ``family`` (empty for ``other``)."""
    if family not in FAMILY_FEATURES:
        raise ValueError(f"unknown family {family!r}; known: {sorted(FAMILY_FEATURES)}")
    return tuple(validate(d) for d in FAMILY_FEATURES[family])
