"""The contract check: every class of bad data is named with its column and rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from riskops.contracts import check_file, check_frame
from riskops.specs import parse_spec


def credit_frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "application_id": [f"APP-{i:06d}" for i in range(n)],
            "customer_id": [f"C-{i:06d}" for i in range(n)],
            "applied_at": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
            "income": rng.uniform(10_000, 200_000, n).round(2),
            "debt_to_income": rng.uniform(0, 2, n),
            "credit_utilisation": rng.uniform(0, 1, n),
            "num_delinquencies": rng.integers(0, 5, n),
            "loan_amount": rng.uniform(1_000, 50_000, n),
            "term_months": rng.choice([12, 24, 36], n),
            "months_employed": rng.integers(0, 300, n),
            "num_open_accounts": rng.integers(0, 20, n),
            "employment_type": rng.choice(["employed", "self-employed", "retired"], n),
            "region": rng.choice(["north", "south", "NA"], n),
            "home_ownership": rng.choice(["rent", "own", "mortgage"], n),
            "age": rng.integers(18, 90, n),
            "gender": rng.choice(["female", "male", "undisclosed"], n),
            "default_12m": rng.choice([0, 1], n, p=[0.93, 0.07]),
        }
    )


def as_csv(frame: pd.DataFrame, tmp_path: Path, name: str = "data.csv") -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return path


def codes(result) -> dict[str, list]:
    found: dict[str, list] = {}
    for v in result.violations:
        found.setdefault(v.code, []).append(v)
    return found


def test_good_csv_and_parquet_are_accepted_with_types(credit_spec, tmp_path):
    frame = credit_frame()
    for path in (as_csv(frame, tmp_path), tmp_path / "data.parquet"):
        if path.suffix == ".parquet":
            frame.to_parquet(path)
        result = check_file(credit_spec, path, path.name)
        assert result.accepted, result.violations
        typed = result.frame
        assert typed["income"].dtype == "float64"
        assert str(typed["applied_at"].dtype) == "datetime64[ns, UTC]"
        assert set(typed["default_12m"].unique()) <= {0, 1}
        # "NA" is a real region code in text columns, not a null
        assert (typed["region"] == "NA").sum() > 0


def test_every_problem_is_reported_at_once_with_rows(credit_spec, tmp_path):
    frame = credit_frame().astype(object)
    frame = frame.drop(columns=["home_ownership"])
    frame.loc[4, "income"] = -5  # row 5 (1-based, header excluded)
    frame.loc[9, "loan_amount"] = "twelve"
    frame.loc[12, "gender"] = "robot"
    frame.loc[20, "application_id"] = frame.loc[19, "application_id"]
    frame.loc[30, "default_12m"] = "maybe"
    frame.loc[40, "applied_at"] = "last tuesday"
    frame.loc[41, "customer_id"] = None
    result = check_file(credit_spec, as_csv(frame, tmp_path), "data.csv")
    assert not result.accepted
    found = codes(result)
    assert found["missing_column"][0].column == "home_ownership"
    ranges = {v.column: v for v in found["out_of_range"]}
    assert ranges["income"].rows == [5] and "below the minimum 0" in ranges["income"].message
    types = {v.column: v for v in found["type_mismatch"]}
    assert types["loan_amount"].rows == [10]
    assert types["applied_at"].rows == [41]
    assert found["value_not_allowed"][0].column == "gender"
    assert "robot" in found["value_not_allowed"][0].message
    assert found["duplicate_ids"][0].rows == [21]
    assert found["target_values"][0].rows == [31]
    assert found["required_value_missing"][0].column == "customer_id"


def test_null_rate_over_limit(credit_spec):
    frame = credit_frame(100)
    frame.loc[:20, "credit_utilisation"] = np.nan  # 21% > 10% rule for this column
    frame.loc[:3, "income"] = np.nan  # 4% <= 5% file default
    result = check_frame(credit_spec, frame)
    nulls = codes(result)["null_rate"]
    assert [v.column for v in nulls] == ["credit_utilisation"]
    assert "21.0% nulls exceeds the limit 10.0%" in nulls[0].message


def test_duplicate_rows(credit_spec):
    frame = credit_frame(50)
    frame = pd.concat([frame, frame.iloc[[7]]], ignore_index=True)
    result = check_frame(credit_spec, frame)
    assert codes(result)["duplicate_rows"][0].rows == [51]


def test_null_tokens_count_as_nulls_in_numbers_only(credit_spec, tmp_path):
    frame = credit_frame(100).astype(object)
    frame.loc[2, "months_employed"] = "NULL"
    frame.loc[3, "months_employed"] = "n/a"
    result = check_file(credit_spec, as_csv(frame, tmp_path), "x.csv")
    assert result.accepted, result.violations
    assert result.frame["months_employed"].isna().sum() == 2


@pytest.mark.parametrize(
    ("content", "code", "fragment"),
    [
        (b"", "empty_file", "0 bytes"),
        (b"\n", "empty_file", "no header"),
        (b"income,debt\n1,2\n\xff\xfe3,4\n", "encoding", "line 3"),
        (b"PAR1 this is not really parquet PAR1", "unreadable", "parquet"),
        (b'a,b\n1,"unterminated\n', "unreadable", "CSV"),
    ],
)
def test_unreadable_files_become_one_violation(credit_spec, tmp_path, content, code, fragment):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    result = check_file(credit_spec, path, "bad.csv")
    assert [v.code for v in result.violations] == [code]
    assert fragment in result.violations[0].message


def test_header_only_file_has_no_rows(credit_spec, tmp_path):
    path = as_csv(credit_frame().head(0), tmp_path)
    result = check_file(credit_spec, path, "data.csv")
    assert [v.code for v in result.violations] == ["no_rows"]


def test_string_target_and_symbols_in_names():
    spec = parse_spec(
        {
            "name": "sme-overdraft",
            "family": "other",
            "risk_class": "limited",
            "owner": "sme",
            "intended_use": "demo",
            "target": "outcome",
            "positive_label": "bad",
            "target_values": ["good", "bad"],
            "features": {"numeric": ["turnover €"], "categorical": ["sector / NACE"]},
        }
    )
    frame = pd.DataFrame(
        {
            "turnover €": ["1000.5", "2000", "15"],
            "sector / NACE": ["C — manufacturing", "G: retail & wholesale", "C — manufacturing"],
            "outcome": ["good", "bad", "good"],
        }
    )
    result = check_frame(spec, frame)
    assert result.accepted, result.violations
    frame.loc[2, "outcome"] = "1"
    assert codes(check_frame(spec, frame))["target_values"][0].rows == [3]
