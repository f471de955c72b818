"""Account-to-account transfers with money-mule patterns (family transaction_risk)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from riskops.synthetic import common as c

TRANSFER_TYPES = ["domestic", "sepa", "swift", "instant"]
CHANNELS = ["mobile", "web", "branch", "api"]
CHANNEL_UNSEEN = ["crypto", "open-banking"]
HOME = "DE"
EU = ["FR", "NL", "AT", "BE", "ES", "IT", "PL", "LT", "CY", "MT", "PT", "IE"]
WORLD = ["US", "GB", "CH", "JP", "CN", "IN", "CA", "AU", "SG", "BR"]
HIGH_RISK = ["AE", "TR", "NG", "PA", "KY", "VG", "HK", "SC"]
COUNTRIES = [HOME, *EU, *WORLD, *HIGH_RISK]

SUSPICIOUS_RATE = 0.015  # share of suspicious rows before prior drift
LONE_SHARE = 0.15  # of suspicious rows: ordinary-looking transfers flagged from outside intel
LEGIT, MULE, TAKEOVER = 0, 1, 2  # row profiles; takeover = the pattern after concept drift
_TYPE_P = np.array([[0.55, 0.25, 0.03, 0.17], [0.35, 0.25, 0.07, 0.33], [0.50, 0.15, 0.0, 0.35]])
_CHANNEL_P = np.array([[0.58, 0.32, 0.05, 0.05], [0.58, 0.30, 0.0, 0.12], [0.55, 0.45, 0.0, 0.0]])
_NEW_CP_P = np.array([0.25, 0.50, 0.20])
_HOURLY_LEGIT = [0.1, 0.05, 0.05, 0.05, 0.05, 0.1, 0.3, 0.7, 1.2, 1.5, 1.5, 1.4]
_HOURLY_LEGIT += [1.4, 1.4, 1.4, 1.3, 1.3, 1.2, 1.1, 1.0, 0.8, 0.6, 0.4, 0.2]
_HOURLY_FLAT = [1.0] * 24
_ROUND = np.array([200, 300, 500, 1000, 1500, 2000, 2500, 3000, 5000])
_THRESHOLDS = np.array([10_000, 15_000])


def _unit(weights: np.ndarray) -> np.ndarray:
    return weights / weights.sum()


def _country_table() -> np.ndarray:
    """Counterparty-country probabilities; row = profile * 4 + transfer type."""
    home = np.array([1.0] + [0.0] * (len(COUNTRIES) - 1))
    eu = np.array([0.0] + [1.0] * len(EU) + [0.0] * (len(WORLD) + len(HIGH_RISK)))
    world = np.array([0.0] * (1 + len(EU)) + [1.0] * len(WORLD) + [0.0] * len(HIGH_RISK))
    risky = np.array([0.0] * (1 + len(EU) + len(WORLD)) + [1.0] * len(HIGH_RISK))
    eu_hub = eu * np.array([0.0] + [1.0] * 7 + [4.0, 4.0, 4.0, 1.0, 1.0] + [0.0] * 18)
    legit = [home, _unit(eu), 0.85 * _unit(world) + 0.15 * _unit(risky), home]
    mule = [
        home,
        _unit(eu_hub),
        0.3 * _unit(world) + 0.7 * _unit(risky),
        0.7 * home + 0.3 * _unit(eu),
    ]
    takeover = [home, _unit(eu), _unit(world), home]
    return np.array(legit + mule + takeover)


_COUNTRY_P = _country_table()

SCHEMA = pa.schema(
    [
        pa.field("transfer_id", pa.string(), nullable=False),
        pa.field("account_id", pa.string(), nullable=False),
        pa.field("event_time", c.TIMESTAMP, nullable=False),
        pa.field("counterparty_id", pa.string()),
        pa.field("amount", pa.float64()),
        pa.field("account_age_days", pa.int64()),
        pa.field("account_balance", pa.float64()),
        pa.field("is_new_counterparty", pa.int64()),
        pa.field("transfer_type", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("counterparty_country", pa.string()),
        pa.field("is_suspicious", pa.int64(), nullable=False),
    ]
)


def n_accounts(total_rows: int) -> int:
    """Size of the ordinary account pool: about 25 transfers per account."""
    return max(10, total_rows // 25)


def _account_age0(accounts: np.ndarray, seed: int) -> np.ndarray:
    """Age in days of each pool account at the start of the period (8 % opened recently)."""
    young = c.hash_uniform(accounts, seed, 21) < 0.15
    old = np.exp(np.log(1500) + 0.8 * c.hash_normal(accounts, seed, 22))
    return np.where(young, 365 * c.hash_uniform(accounts, seed, 23), np.minimum(old, 30_000))


def _bursts(ctx: c.BlockContext) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Suspicious bursts: (account, time, profile, age in days at burst start) per row."""
    rng, d = ctx.rng, ctx.drift
    expected = ctx.n * SUSPICIOUS_RATE * (1 - LONE_SHARE) * d.prior_factor / 9.0
    sizes = 4 + rng.poisson(5.0, rng.poisson(expected))
    sizes = sizes[np.cumsum(sizes) <= ctx.n // 2]
    count = len(sizes)
    takeover = rng.random(count) < d.concept_share
    pool = n_accounts(ctx.total_rows)
    # Mules are fresh accounts outside the ordinary pool; takeovers hijack ordinary accounts.
    mule_ids = pool + ctx.row_offset + np.arange(count, dtype=np.int64)
    account = np.where(takeover, rng.integers(0, pool, count), mule_ids)
    # Days since the mule account was opened: mostly fresh, some dormant accounts bought in.
    dormant = rng.random(count) < 0.3
    mule_age = np.where(dormant, rng.uniform(365, 3000, count), rng.gamma(2.0, 20.0, count))
    starts = c.cycle_times(rng, count, ctx.t0_us, ctx.t1_us, _HOURLY_FLAT)
    mean_gap = np.where(takeover, 2 * c.US_PER_HOUR, 25 * 60_000_000)
    offsets = c.burst_offsets(sizes, rng.exponential(1.0, sizes.sum()) * np.repeat(mean_gap, sizes))
    duration = np.repeat(offsets[np.cumsum(sizes) - 1], sizes)
    latest = np.maximum(ctx.t0_us, ctx.t1_us - 1 - duration)
    event = np.minimum(np.minimum(np.repeat(starts, sizes), latest) + offsets, ctx.t1_us - 1)
    hijacked = np.repeat(takeover, sizes)
    rows = np.repeat(account, sizes)
    age = np.where(
        hijacked,
        _account_age0(rows, ctx.seed) + (event - ctx.start_us) / c.US_PER_DAY,
        np.repeat(mule_age, sizes) + offsets / c.US_PER_DAY,
    )
    profile = np.where(hijacked, TAKEOVER, MULE)
    return rows, event, profile, age


def _amounts(rng: np.random.Generator, profile: np.ndarray, shift: float) -> np.ndarray:
    """Transfer amounts: lognormal for ordinary use, round or just-below-threshold for mules."""
    n = len(profile)
    big = rng.random(n) < 0.25  # rent, savings, purchases next to everyday payments
    legit = np.exp(np.where(big, np.log(1200), np.log(120)) + rng.standard_normal(n) + 0.4 * shift)
    legit = np.where(rng.random(n) < 0.25, np.maximum(50, np.round(legit / 50) * 50), legit)
    below = _THRESHOLDS[rng.integers(0, 2, n)] - rng.uniform(1, 200, n)
    pattern = c.choose(rng, [0.35, 0.15, 0.50], n)
    mule = np.select(
        [pattern == 0, pattern == 1],
        [_ROUND[rng.integers(0, len(_ROUND), n)], below],
        np.exp(np.log(400) + 1.1 * rng.standard_normal(n)),
    )
    takeover = np.exp(np.log(2500) + 0.7 * rng.standard_normal(n) + 0.4 * shift)
    amount = np.choose(profile, [legit, mule, takeover])
    return np.clip(np.round(amount, 2), 0.01, 5_000_000)


def make_block(ctx: c.BlockContext) -> pa.Table:
    """Generate one block of outgoing transfers, sorted by event time."""
    rng, d, shift = ctx.rng, ctx.drift, ctx.drift.covariate
    b_account, b_time, b_profile, b_age = _bursts(ctx)
    n_legit, n = ctx.n - len(b_account), ctx.n
    pool = n_accounts(ctx.total_rows)
    l_account = np.minimum((pool * rng.random(n_legit) ** 1.25).astype(np.int64), pool - 1)
    l_time = c.cycle_times(rng, n_legit, ctx.t0_us, ctx.t1_us, _HOURLY_LEGIT)
    l_age = _account_age0(l_account, ctx.seed) + (l_time - ctx.start_us) / c.US_PER_DAY
    account = np.concatenate((l_account, b_account))
    event = np.concatenate((l_time, b_time))
    profile = np.concatenate((np.zeros(n_legit, dtype=np.int64), b_profile))
    age_days = np.clip(np.floor(np.concatenate((l_age, b_age))), 0, 40_000)

    type_p = _TYPE_P.copy()
    type_p[LEGIT, 3] += 0.2 * shift  # covariate drift: instant payments take over
    transfer_type = c.choose_by_group(rng, type_p, profile)
    channel = c.choose_by_group(rng, _CHANNEL_P, profile)
    country = c.choose_by_group(rng, _COUNTRY_P, profile * 4 + transfer_type)
    is_new = rng.random(n) < _NEW_CP_P[profile]
    n_cp = max(100, ctx.total_rows // 4)
    known = c.hash_uniform(account * 8 + rng.integers(0, 8, n), ctx.seed, 31)
    counterparty = np.where(is_new, rng.integers(0, n_cp, n), (known * n_cp).astype(np.int64))

    amount = _amounts(rng, profile, shift)
    base = np.exp(np.log(2500) + 1.1 * c.hash_normal(account, ctx.seed, 32))
    balance = base * np.exp(0.3 * rng.standard_normal(n)) + amount
    passthrough = amount * (1 + 0.05 * rng.random(n))  # mule money leaves as it arrives
    mule_flow = (profile == MULE) & (rng.random(n) < 0.3)
    balance = np.round(np.where(mule_flow, passthrough, balance), 2)

    lone = rng.random(n) < SUSPICIOUS_RATE * LONE_SHARE * d.prior_factor * n / max(1, n_legit)
    suspicious = (profile != LEGIT) | lone
    order = np.argsort(event, kind="stable")
    ch_cats, channel = d.new_categories_in(ctx.drift_rng, CHANNELS, channel[order], CHANNEL_UNSEEN)
    balance_null = d.missing_mask(ctx.drift_rng, n)
    numbers = ctx.row_offset + np.arange(n, dtype=np.int64)
    columns = [
        c.fixed_ids("TRF-", numbers + 1, 12),
        c.fixed_ids("ACC-", account[order] + 1, 12),
        c.times(event[order]),
        c.fixed_ids("CPY-", counterparty[order] + 1, 10),
        c.floats(amount[order]),
        c.ints(age_days[order]),
        c.floats(balance[order], balance_null),
        c.ints(is_new[order]),
        c.strings(TRANSFER_TYPES, transfer_type[order]),
        c.strings(ch_cats, channel),
        c.strings(COUNTRIES, country[order]),
        c.ints(suspicious[order]),
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMA)


FAMILY = c.Family(
    name="transaction_risk",
    salt=3,
    schema=SCHEMA,
    id_column="transfer_id",
    entity_column="account_id",
    time_column="event_time",
    target="is_suspicious",
    span_days=90.0,
    label_delay_days=30.0,
    new_category_column="channel",
    missing_column="account_balance",
    make_block=make_block,
)
