"""The synthetic data generator: spec conformance, realism of the labels, drift knobs, streaming."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from riskops.contracts import check_file
from riskops.specs import ModelSpec, load_spec
from riskops.synthetic import (
    BLOCK_ROWS,
    FAMILIES,
    generate,
    parse_drift_args,
    resolve_family,
    writer,
)

ROOT = Path(__file__).resolve().parents[1]
MODEL_OF = {
    "credit_scoring": "credit-scoring",
    "fraud_detection": "fraud-detection",
    "transaction_risk": "transaction-risk",
}
RATE_BAND = {
    "credit_scoring": (0.05, 0.10),
    "fraud_detection": (0.002, 0.01),
    "transaction_risk": (0.01, 0.02),
}
# Columns beyond the spec: the raw keys a velocity feature (per merchant/counterparty) needs.
EXTRA = {
    "credit_scoring": set(),
    "fraud_detection": {"merchant_id"},
    "transaction_risk": {"counterparty_id"},
}
ROWS = 50_000
HOUR = pd.Timedelta(hours=1)


def spec_of(family: str) -> ModelSpec:
    return load_spec(ROOT / "models" / f"{MODEL_OF[family]}.yaml")


def make(tmp: Path, family: str, rows: int = ROWS, seed: int = 1, name: str = "", **kw) -> Path:
    path = tmp / (name or f"{family}-{seed}.parquet")
    generate(family, rows, seed, path, progress=False, **kw)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One default 50k-row file per family (chunked, so chunk boundaries are exercised)."""
    tmp = tmp_path_factory.mktemp("synthetic")
    return {family: make(tmp, family, chunk_rows=12_000) for family in FAMILIES}


@pytest.fixture(scope="module")
def frames(files: dict[str, Path]) -> dict[str, pd.DataFrame]:
    return {family: pd.read_parquet(path) for family, path in files.items()}


# --- the contract -------------------------------------------------------------------------------


@pytest.mark.parametrize("family", list(FAMILIES))
def test_columns_are_the_spec_columns_with_plain_dtypes(family, frames):
    spec, df = spec_of(family), frames[family]
    assert set(df.columns) == set(spec.required_columns) | EXTRA[family]
    assert str(df[spec.timestamp_column].dtype).startswith("datetime64") and "UTC" in str(
        df[spec.timestamp_column].dtype
    )
    assert df[spec.target].dtype == np.int64 and set(df[spec.target].unique()) <= {0, 1}
    for column in spec.features.numeric:
        assert pd.api.types.is_numeric_dtype(df[column]), column
    for column in spec.features.categorical:
        assert df[column].dtype == object, column


@pytest.mark.parametrize("family", list(FAMILIES))
def test_ranges_allowed_values_and_null_rates_respect_the_spec(family, frames):
    spec, df = spec_of(family), frames[family]
    for column, rule in spec.columns.items():
        values = df[column]
        if rule.min is not None:
            assert values.min() >= rule.min, column
        if rule.max is not None:
            assert values.max() <= rule.max, column
        if rule.allowed is not None:
            assert set(values.dropna().unique()) <= set(rule.allowed), column
    for column in spec.required_columns:
        rule = spec.columns.get(column)
        limit = rule.max_null_rate if rule and rule.max_null_rate is not None else None
        limit = limit if limit is not None else spec.data.max_null_rate
        assert df[column].isna().mean() <= limit, column
    for column in (spec.target, spec.entity_column, spec.timestamp_column, spec.data.id_column):
        assert df[column].notna().all(), column


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_contract_check_accepts_a_default_file(family, suffix, tmp_path):
    path = make(tmp_path, family, rows=5_000, name=f"{family}{suffix}")
    result = check_file(spec_of(family), path, path.name)
    assert result.accepted, result.summary()
    assert result.row_count == 5_000


@pytest.mark.parametrize("family", list(FAMILIES))
def test_positive_rate_is_in_band(family, frames):
    low, high = RATE_BAND[family]
    assert low <= frames[family][spec_of(family).target].mean() <= high


@pytest.mark.parametrize("family", list(FAMILIES))
def test_ids_unique_and_time_increasing_across_chunks(family, files, frames):
    spec, df = spec_of(family), frames[family]
    assert pq.ParquetFile(files[family]).metadata.num_row_groups == 5  # 50k rows / 12k chunks
    assert len(df) == ROWS and df[spec.data.id_column].is_unique
    times = df[spec.timestamp_column]
    assert times.is_monotonic_increasing
    assert times.iloc[-1] - times.iloc[0] > pd.Timedelta(days=60)


# --- determinism and streaming ------------------------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_gives_the_same_file_and_another_seed_does_not(tmp_path):
    a = make(tmp_path, "fraud_detection", 20_000, seed=5, name="a.parquet")
    b = make(tmp_path, "fraud_detection", 20_000, seed=5, name="b.parquet")
    c = make(tmp_path, "fraud_detection", 20_000, seed=6, name="c.parquet")
    assert _digest(a) == _digest(b)
    assert not pq.read_table(a).equals(pq.read_table(c))


def test_chunk_size_changes_memory_not_content(tmp_path):
    rows = BLOCK_ROWS + 9_000  # two generation blocks, regrouped differently
    small = make(tmp_path, "transaction_risk", rows, name="small.parquet", chunk_rows=10_000)
    whole = make(tmp_path, "transaction_risk", rows, name="whole.parquet", chunk_rows=10**6)
    assert pq.ParquetFile(small).metadata.num_row_groups == 8
    assert pq.ParquetFile(whole).metadata.num_row_groups == 1
    assert pq.read_table(small).equals(pq.read_table(whole))


def test_rechunk_regroups_without_losing_rows():
    tables = [pa.table({"x": np.arange(i * 7, i * 7 + 7)}) for i in range(5)]
    chunks = list(writer.rechunk(tables, 10))
    assert [t.num_rows for t in chunks] == [10, 10, 10, 5]
    assert pa.concat_tables(chunks).column("x").to_pylist() == list(range(35))


def test_a_failed_run_leaves_no_file_behind(tmp_path, monkeypatch):
    calls = []

    def broken_write(self, table):
        calls.append(table.num_rows)
        if len(calls) == 2:
            raise OSError("disk full")

    monkeypatch.setattr(writer.TableSink, "write", broken_write)
    out = tmp_path / "out.parquet"
    with pytest.raises(OSError, match="disk full"):
        generate("credit_scoring", 30_000, 1, out, chunk_rows=10_000, progress=False)
    assert list(tmp_path.iterdir()) == []


# --- realism of the labels ----------------------------------------------------------------------


def credit_design(df: pd.DataFrame) -> pd.DataFrame:
    """Standardised design matrix for a plain logistic regression of default_12m."""
    x = pd.DataFrame(
        {
            "log_dti": np.log(df.debt_to_income + 0.01),
            "util": df.credit_utilisation.fillna(0.45),
            "delinq": df.num_delinquencies.clip(upper=5),
            "log_income": np.log(df.income.clip(lower=1000)),
            "log_loan": np.log(df.loan_amount),
            "months": df.months_employed.fillna(0),
        }
    ).join(pd.get_dummies(df.employment_type, dtype=float))
    return (x - x.mean()) / x.std()


def test_credit_default_is_learnable_monotonic_and_not_driven_by_gender(frames):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    df = frames["credit_scoring"]
    x = credit_design(df)
    half = len(df) // 2
    model = LogisticRegression(max_iter=2000).fit(x[:half], df.default_12m[:half])
    auc = roc_auc_score(df.default_12m[half:], model.predict_proba(x[half:])[:, 1])
    assert 0.72 <= auc <= 0.85
    by_dti = df.groupby(pd.qcut(df.debt_to_income, 5), observed=True).default_12m.mean()
    by_income = df.groupby(pd.qcut(df.income, 5), observed=True).default_12m.mean()
    assert by_dti.iloc[-1] > 2 * by_dti.iloc[0] and by_income.iloc[0] > by_income.iloc[-1]
    assert df[df.num_delinquencies > 0].default_12m.mean() > df.default_12m.mean()
    by_gender = df[df.gender.isin(["female", "male"])].groupby("gender").default_12m.mean()
    assert by_gender.max() / by_gender.min() < 1.15


def _previous_gap(df: pd.DataFrame, entity: str, time: str) -> pd.Series:
    """Time since the previous event of the same entity (NaT for its first event)."""
    return df.sort_values(time).groupby(entity)[time].diff()


def test_fraud_comes_in_fast_bursts_on_few_cards(frames):
    df = frames["fraud_detection"]
    fraud, legit = df[df.is_fraud == 1], df[df.is_fraud == 0]
    assert fraud.card_id.nunique() < 0.35 * len(fraud)  # several frauds per compromised card
    gap = _previous_gap(df, "card_id", "event_time")
    assert gap[fraud.index].median() < HOUR
    assert gap[legit.index].median() > pd.Timedelta(days=1)
    assert (gap[fraud.index] < HOUR).mean() > 0.6 > 0.05 > (gap[legit.index] < HOUR).mean()
    assert fraud.amount.median() > legit.amount.median()
    assert (fraud.channel == "ecom").mean() > (legit.channel == "ecom").mean()
    assert (fraud.country != "DE").mean() > (legit.country != "DE").mean()
    night = df.event_time.dt.hour < 6
    assert night[fraud.index].mean() > 2 * night[legit.index].mean()


def test_card_transactions_follow_a_daily_cycle(frames):
    hours = frames["fraud_detection"].event_time.dt.hour
    assert (hours.isin(range(10, 16))).mean() > 3 * (hours.isin(range(0, 6))).mean()


def test_suspicious_transfers_look_like_mules(frames):
    df = frames["transaction_risk"]
    bad, good = df[df.is_suspicious == 1], df[df.is_suspicious == 0]
    young = (bad.account_age_days < 90).mean()
    assert young > 0.4 and young > 5 * (good.account_age_days < 90).mean()
    assert bad.is_new_counterparty.mean() > 1.5 * good.is_new_counterparty.mean()

    def roundish(a: pd.Series) -> pd.Series:
        return (a % 100 == 0) | a.between(9_800, 9_999.99) | a.between(14_800, 14_999.99)

    assert roundish(bad.amount).mean() > 2 * roundish(good.amount).mean()
    gap = _previous_gap(df, "account_id", "event_time")
    assert gap[bad.index].median() < HOUR < gap[good.index].median()


# --- drift --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def drift_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("drift")


def drifted(drift_dir: Path, family: str, **drift: float) -> pd.DataFrame:
    tag = "-".join(f"{k}{v}" for k, v in drift.items()) or "base"
    path = drift_dir / f"{family}-{tag}.parquet"
    if not path.exists():
        generate(family, 40_000, 3, path, drift=drift, progress=False)
    return pd.read_parquet(path)


@pytest.mark.parametrize(
    ("family", "column", "direction"),
    [
        ("credit_scoring", "income", -1),
        ("fraud_detection", "amount", 1),
        ("transaction_risk", "amount", 1),
    ],
)
def test_covariate_drift_shifts_the_feature(drift_dir, family, column, direction):
    base = drifted(drift_dir, family)[column].median()
    moved = drifted(drift_dir, family, covariate=1.0)[column].median()
    assert direction * (moved - base) > 0.15 * base


@pytest.mark.parametrize("family", list(FAMILIES))
def test_prior_drift_multiplies_the_positive_rate(drift_dir, family):
    target = spec_of(family).target
    base = drifted(drift_dir, family)[target].mean()
    assert 1.6 < drifted(drift_dir, family, prior=1.0)[target].mean() / base < 2.4


def test_concept_drift_flips_the_role_of_a_feature(drift_dir):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    before = drifted(drift_dir, "credit_scoring")
    after = drifted(drift_dir, "credit_scoring", concept=1.0)
    fits = [
        LogisticRegression(max_iter=2000).fit(credit_design(df), df.default_12m)
        for df in (before, after)
    ]
    util = list(credit_design(before).columns).index("util")
    assert fits[0].coef_[0, util] > 0.2 > -0.2 > fits[1].coef_[0, util]
    old_model_auc = [
        roc_auc_score(df.default_12m, fits[0].predict_proba(credit_design(df))[:, 1])
        for df in (before, after)
    ]
    assert old_model_auc[1] < old_model_auc[0] - 0.03  # the champion degrades
    fraud = drifted(drift_dir, "fraud_detection", concept=1.0)
    bad, good = fraud[fraud.is_fraud == 1], fraud[fraud.is_fraud == 0]
    assert (bad.channel == "ecom").mean() < (good.channel == "ecom").mean()  # was far above
    mules = drifted(drift_dir, "transaction_risk", concept=1.0).query("is_suspicious == 1")
    assert mules.account_age_days.median() > 365  # hijacked old accounts, not fresh mules


@pytest.mark.parametrize("family", list(FAMILIES))
def test_new_categories_appear_only_in_an_open_column(drift_dir, family):
    spec, fam = spec_of(family), resolve_family(family)
    column = fam.new_category_column
    assert column in spec.features.categorical and column not in spec.columns
    seen = set(drifted(drift_dir, family)[column].unique())
    df = drifted(drift_dir, family, new_categories=0.3)
    unseen = ~df[column].isin(seen)
    assert 0.25 < unseen.mean() < 0.35
    for name, rule in spec.columns.items():
        if rule.allowed:
            assert set(df[name].dropna().unique()) <= set(rule.allowed)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_missing_drift_nulls_one_feature_and_nothing_else(drift_dir, family):
    column = resolve_family(family).missing_column
    assert column in spec_of(family).features.numeric
    base = drifted(drift_dir, family)
    df = drifted(drift_dir, family, missing=0.3)
    assert 0.25 < df[column].isna().mean() - base[column].isna().mean() < 0.35
    kept = df[column].notna()
    pd.testing.assert_series_equal(df.loc[kept, column], base.loc[kept, column])
    pd.testing.assert_frame_equal(df.drop(columns=column), base.drop(columns=column))


def test_unknown_or_bad_drift_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"'seasonal'.*allowed kinds: covariate, prior"):
        generate("credit_scoring", 10, 1, tmp_path / "x.parquet", drift={"seasonal": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        generate("credit_scoring", 10, 1, tmp_path / "x.parquet", drift={"prior": -1})
    with pytest.raises(ValueError, match="KIND=LEVEL"):
        parse_drift_args(["covariate"])
    assert parse_drift_args(["new-categories=0.2", "prior=1"]) == {
        "new_categories": 0.2,
        "prior": 1.0,
    }
    assert not list(tmp_path.iterdir())


# --- delayed labels -----------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_labels_file_carries_the_delay(tmp_path, suffix):
    out, labels = tmp_path / "tx.parquet", tmp_path / f"labels{suffix}"
    report = generate(
        "fraud_detection", 8_000, 2, out, labels_out=labels, label_delay_days=30, progress=False
    )
    assert report.labels_path == labels
    df = pd.read_parquet(out)
    lab = pd.read_parquet(labels) if suffix == ".parquet" else pd.read_csv(labels)
    assert list(lab.columns) == ["transaction_id", "card_id", "is_fraud", "label_available_at"]
    available = pd.to_datetime(lab.label_available_at, utc=True, format="ISO8601")
    assert (lab.transaction_id == df.transaction_id).all() and (lab.is_fraud == df.is_fraud).all()
    assert ((available - df.event_time) == pd.Timedelta(days=30)).all()


def test_labels_only_separate_drops_the_target_from_the_main_file(tmp_path):
    out, labels = tmp_path / "apps.parquet", tmp_path / "defaults.parquet"
    generate(
        "credit_scoring",
        3_000,
        2,
        out,
        labels_out=labels,
        labels_only_separate=True,
        progress=False,
    )
    assert "default_12m" not in pd.read_parquet(out).columns
    lab = pd.read_parquet(labels)
    delay = lab.label_available_at - pd.read_parquet(out).applied_at
    assert (delay == pd.Timedelta(days=365)).all()  # the family default: a 12-month outcome
    with pytest.raises(ValueError, match="needs labels_out"):
        generate("credit_scoring", 10, 1, tmp_path / "y.parquet", labels_only_separate=True)


# --- command line -------------------------------------------------------------------------------


def test_cli_generates_with_aliases_drift_and_json(tmp_path):
    from riskops.cli.data import app

    out = tmp_path / "t.parquet"
    args = ["generate", "transaction-risk", "--rows", "5000", "--seed", "4", "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--drift", "prior=1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["family"] == "transaction_risk" and summary["rows"] == 5000
    assert summary["drift"] == {"prior": 1.0} and summary["path"] == str(out)
    assert len(pd.read_parquet(out)) == 5000
    args = ["generate", "credit-scoring", "-n", "100", "-o", str(out), "--start", "2025-03-01"]
    plain = CliRunner().invoke(app, args)
    assert plain.exit_code == 0 and "rows/s" in plain.stdout
    assert pd.read_parquet(out).applied_at.min() >= pd.Timestamp("2025-03-01", tz="UTC")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--drift", "covariate"], "KIND=LEVEL"),
        (["--drift", "covariate=lots"], "not a number"),
        (["--drift", "seasonal=1"], "unknown drift kind"),
    ],
)
def test_cli_refuses_bad_drift_with_exit_2(tmp_path, extra, message):
    from riskops.cli.data import app

    args = ["generate", "fraud_detection", "--rows", "10", "--out", str(tmp_path / "x.parquet")]
    result = CliRunner().invoke(app, [*args, *extra])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "x.parquet").exists()
