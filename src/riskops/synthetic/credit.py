"""Consumer loan applications with a 12-month default label (family credit_scoring)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from riskops.synthetic import common as c

EMPLOYMENT = ["employed", "self-employed", "unemployed", "retired", "student"]
EMPLOYMENT_UNSEEN = ["gig-worker", "zero-hours-contract"]
REGIONS = ["north", "south", "east", "west", "capital"]
HOME = ["rent", "own", "mortgage"]
GENDERS = ["female", "male", "other", "undisclosed"]
TERMS = np.array([12, 24, 36, 48, 60, 84])

# Employment by age band (<25, 25-59, 60+).
_EMPLOYMENT_BY_AGE = np.array(
    [
        [0.65, 0.06, 0.11, 0.00, 0.18],
        [0.76, 0.13, 0.07, 0.01, 0.03],
        [0.38, 0.12, 0.05, 0.45, 0.00],
    ]
)
_HOME_BY_AGE = np.array([[0.80, 0.05, 0.15], [0.38, 0.17, 0.45], [0.20, 0.55, 0.25]])
# log-income shift and label log-odds shift by employment type.
_EMP_INCOME = np.array([0.0, 0.1, -0.8, -0.35, -1.0])
_EMP_RISK = np.array([0.0, 0.25, 0.8, -0.2, 0.35])
_HOURLY = [0.1] * 6 + [0.4, 0.8, 1.2, 1.5, 1.6, 1.5, 1.4, 1.5, 1.5, 1.4, 1.3, 1.2] + [1.0] * 3
_HOURLY += [0.7, 0.4, 0.2]

INTERCEPT = -3.9  # calibrated so that the default rate is about 7 %

SCHEMA = pa.schema(
    [
        pa.field("application_id", pa.string(), nullable=False),
        pa.field("customer_id", pa.string(), nullable=False),
        pa.field("applied_at", c.TIMESTAMP, nullable=False),
        pa.field("income", pa.float64()),
        pa.field("debt_to_income", pa.float64()),
        pa.field("credit_utilisation", pa.float64()),
        pa.field("num_delinquencies", pa.int64()),
        pa.field("loan_amount", pa.float64()),
        pa.field("term_months", pa.int64()),
        pa.field("months_employed", pa.int64()),
        pa.field("num_open_accounts", pa.int64()),
        pa.field("employment_type", pa.string()),
        pa.field("region", pa.string()),
        pa.field("home_ownership", pa.string()),
        pa.field("age", pa.int64()),
        pa.field("gender", pa.string()),
        pa.field("default_12m", pa.int64(), nullable=False),
    ]
)


def make_block(ctx: c.BlockContext) -> pa.Table:
    """Generate one block of loan applications."""
    rng, n, d = ctx.rng, ctx.n, ctx.drift
    shift = d.covariate
    applied = c.cycle_times(rng, n, ctx.t0_us, ctx.t1_us, _HOURLY)
    customers = rng.integers(0, max(1, int(ctx.total_rows * 0.8)), n)

    age = np.clip(np.round(18 + rng.gamma(3.0, 7.0, n) + 4.0 * shift), 18, 90).astype(np.int64)
    band = np.where(age < 25, 0, np.where(age < 60, 1, 2))
    emp = c.choose_by_group(rng, _EMPLOYMENT_BY_AGE, band)
    home = c.choose_by_group(rng, _HOME_BY_AGE, band)
    region = c.choose(rng, [0.2, 0.22, 0.18, 0.2, 0.2], n)
    gender = c.choose(rng, [0.485, 0.485, 0.01, 0.02], n)  # independent of everything else

    stress = rng.standard_normal(n)  # latent financial stress, partly visible through features
    seniority = np.minimum(age, 60) - 40
    log_income = 10.6 + _EMP_INCOME[emp] + 0.012 * seniority - 0.15 * stress
    income = np.exp(log_income + 0.45 * rng.standard_normal(n) - 0.3 * shift)
    income = np.clip(np.round(income, -1), 0, 10_000_000)
    dti = np.exp(np.log(0.3) + 0.3 * stress + 0.4 * rng.standard_normal(n) + 0.25 * shift)
    dti = np.clip(dti, 0, 10)
    util_logit = -0.5 + 0.9 * stress + 0.9 * rng.standard_normal(n) + 0.4 * shift
    util = np.clip(1.15 / (1 + np.exp(-util_logit)), 0, 1.5)
    delinq = np.minimum(rng.poisson(np.exp(-1.7 + 0.7 * stress)), 100)
    loan = income * np.exp(np.log(0.35) + 0.5 * rng.standard_normal(n) + 0.3 * shift)
    loan = np.clip(np.round(loan, -2), 500, 2_000_000)
    term = TERMS[c.choose(rng, [0.08, 0.15, 0.3, 0.17, 0.22, 0.08], n)]
    years_possible = np.maximum(age - 18, 0) * 12
    working = np.isin(emp, [0, 1, 3])
    months = np.where(working, np.floor(years_possible * rng.beta(1.2, 2.5, n)), 0)
    months = np.minimum(np.where(emp == 4, np.floor(rng.uniform(0, 24, n)), months), 720)
    open_accounts = np.minimum(rng.poisson(2.0 + 0.06 * np.maximum(age - 18, 0)), 200)

    util_null = rng.random(n) < 0.03  # thin-file applicants: no revolving credit
    months_null = rng.random(n) < 0.05  # not declared on the application

    # Label: a logistic model of the observed features plus the unobserved part of stress.
    # Concept drift: utilisation's role reverses. Utilisation also carries the unobserved stress,
    # so the direct term must overshoot (x -2 at level 1) for a refitted model to see it flip.
    flip = 1.0 - 3.0 * d.concept
    logit = (
        INTERCEPT
        + 1.0 * np.log(dti / 0.3)
        + 0.45 * np.minimum(delinq, 4)
        + 1.2 * flip * (np.where(util_null, 0.45, util) - 0.45)
        - 0.5 * (np.log(np.maximum(income, 1000)) - 10.6)
        + 0.25 * np.log(loan / np.maximum(income, 1000) / 0.35)
        + 0.006 * (term - 36)
        - 0.004 * np.where(months_null, 60, months)
        + _EMP_RISK[emp]
        + 0.8 * d.concept * (region == REGIONS.index("east"))
        + 0.5 * stress
        + 1.35 * rng.standard_normal(n)
    )
    p = np.minimum(1.0, d.prior_factor / (1.0 + np.exp(-logit)))
    label = (rng.random(n) < p).astype(np.int64)

    emp_cats, emp = d.new_categories_in(ctx.drift_rng, EMPLOYMENT, emp, EMPLOYMENT_UNSEEN)
    dti_null = d.missing_mask(ctx.drift_rng, n)
    numbers = ctx.row_offset + np.arange(n, dtype=np.int64)
    columns = [
        c.fixed_ids("APP-", numbers + 1, 10),
        c.fixed_ids("CUS-", customers + 1, 10),
        c.times(applied),
        c.floats(income),
        c.floats(dti, dti_null, 4),
        c.floats(util, util_null, 4),
        c.ints(delinq),
        c.floats(loan),
        c.ints(term),
        c.ints(months, months_null),
        c.ints(open_accounts),
        c.strings(emp_cats, emp),
        c.strings(REGIONS, region),
        c.strings(HOME, home),
        c.ints(age),
        c.strings(GENDERS, gender),
        c.ints(label),
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMA)


FAMILY = c.Family(
    name="credit_scoring",
    salt=1,
    schema=SCHEMA,
    id_column="application_id",
    entity_column="customer_id",
    time_column="applied_at",
    target="default_12m",
    span_days=1461.0,  # four years: a time-ordered holdout plus a 365-day embargo still leave half
    label_delay_days=365.0,
    new_category_column="employment_type",
    missing_column="debt_to_income",
    make_block=make_block,
)
