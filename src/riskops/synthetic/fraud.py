"""Card transactions with fraud bursts on compromised cards (family fraud_detection)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from riskops.synthetic import common as c

CHANNELS = ["pos", "ecom", "atm", "contactless"]
ENTRY_MODES = ["chip", "swipe", "manual", "token"]
ENTRY_UNSEEN = ["qr-code", "biometric"]
HOME = "DE"
NEAR = ["AT", "NL", "FR", "BE", "CH", "PL", "IT", "ES", "DK", "CZ"]
FAR = ["US", "GB", "TR", "AE", "TH", "BR", "NG", "RU", "CN", "IN", "UA", "RO"]
COUNTRIES = [HOME, *NEAR, *FAR]
# code, legit weight, fraud weight, log-mean amount
_MCC_TABLE = [
    ("5411", 0.22, 0.02, 3.5),  # grocery
    ("5812", 0.10, 0.01, 3.4),  # restaurants
    ("5814", 0.10, 0.01, 2.5),  # fast food
    ("5541", 0.08, 0.03, 4.0),  # fuel
    ("5912", 0.05, 0.01, 3.1),  # pharmacy
    ("5311", 0.06, 0.04, 4.2),  # department stores
    ("5999", 0.07, 0.06, 3.8),  # misc retail
    ("5691", 0.06, 0.06, 4.2),  # clothing
    ("5732", 0.03, 0.18, 5.3),  # electronics
    ("5944", 0.01, 0.10, 5.6),  # jewellery
    ("5816", 0.03, 0.15, 2.9),  # digital goods
    ("4829", 0.01, 0.12, 5.0),  # money transfer
    ("4121", 0.04, 0.01, 3.0),  # taxis
    ("4511", 0.02, 0.08, 6.0),  # airlines
    ("7011", 0.02, 0.05, 5.5),  # hotels
    ("7995", 0.01, 0.07, 4.0),  # gambling
    ("6011", 0.00, 0.00, 4.6),  # ATM cash (only through the atm channel)
]
MCCS = [row[0] for row in _MCC_TABLE]
_ATM = MCCS.index("6011")
_MCC_MU = np.array([row[3] for row in _MCC_TABLE])
_MCC_W = np.array([[row[1] for row in _MCC_TABLE], [row[1] + row[2] for row in _MCC_TABLE]])

FRAUD_RATE = 0.005  # share of fraudulent rows before prior drift
LEGIT, FRAUD, STEALTH = 0, 1, 2  # row profiles; stealth = fraud after concept drift
_CHANNEL_P = np.array([[0.42, 0.22, 0.05, 0.31], [0.27, 0.45, 0.08, 0.20], [0.33, 0.02, 0.0, 0.65]])
# (home, near, far) by profile and ecom flag: row = profile * 2 + is_ecom
_REGION_P = np.array(
    [
        [0.95, 0.035, 0.015],  # legit, card present
        [0.72, 0.16, 0.12],  # legit, ecom
        [0.75, 0.12, 0.13],  # fraud, card present
        [0.55, 0.20, 0.25],  # fraud, ecom
        [0.97, 0.03, 0.0],  # stealth
        [0.90, 0.10, 0.0],
    ]
)
# entry mode (chip, swipe, manual, token) by profile and channel: row = profile * 4 + channel
_ENTRY_P = np.array(
    [
        [0.85, 0.12, 0.03, 0.0],  # legit: pos, ecom, atm, contactless
        [0.0, 0.0, 0.6, 0.4],
        [0.95, 0.05, 0.0, 0.0],
        [0.45, 0.0, 0.0, 0.55],
        [0.60, 0.30, 0.10, 0.0],  # fraud: skimmed magstripe, keyed-in card numbers
        [0.0, 0.0, 0.75, 0.25],
        [0.6, 0.4, 0.0, 0.0],
        [0.5, 0.0, 0.0, 0.5],
        [0.85, 0.12, 0.03, 0.0],  # stealth: looks like legit
        [0.0, 0.0, 0.5, 0.5],
        [0.95, 0.05, 0.0, 0.0],
        [0.4, 0.0, 0.0, 0.6],
    ]
)
_AMOUNT_UPLIFT = np.array([0.0, 0.5, 0.1])
_HOURLY_LEGIT = [0.15, 0.1, 0.07, 0.05, 0.05, 0.1, 0.3, 0.6, 0.9, 1.0, 1.1, 1.2]
_HOURLY_LEGIT += [1.35, 1.25, 1.1, 1.1, 1.2, 1.35, 1.4, 1.3, 1.1, 0.85, 0.55, 0.3]
_HOURLY_FRAUD = [0.6, 0.6, 0.6, 0.6, 0.5, 0.4, 0.5, 0.7, 0.8, 0.9] + [1.0] * 8
_HOURLY_FRAUD += [1.0, 1.0, 0.9, 0.8, 0.8, 0.7]

SCHEMA = pa.schema(
    [
        pa.field("transaction_id", pa.string(), nullable=False),
        pa.field("card_id", pa.string(), nullable=False),
        pa.field("event_time", c.TIMESTAMP, nullable=False),
        pa.field("merchant_id", pa.string()),
        pa.field("amount", pa.float64()),
        pa.field("mcc", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("country", pa.string()),
        pa.field("entry_mode", pa.string()),
        pa.field("is_fraud", pa.int64(), nullable=False),
    ]
)


def n_cards(total_rows: int) -> int:
    """Size of the card pool: about 20 transactions per card."""
    return max(10, total_rows // 20)


def _bursts(ctx: c.BlockContext) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fraud bursts of this block: (card, time, profile, first-in-burst flag) per fraud row."""
    rng, d = ctx.rng, ctx.drift
    expected = ctx.n * FRAUD_RATE * d.prior_factor / 5.5
    sizes = 2 + rng.poisson(3.5, rng.poisson(expected))
    keep = np.cumsum(sizes) <= ctx.n // 2
    sizes = sizes[keep]
    count = len(sizes)
    cards = rng.integers(0, n_cards(ctx.total_rows), count)
    stealth = rng.random(count) < d.concept_share
    night = c.cycle_times(rng, count, ctx.t0_us, ctx.t1_us, _HOURLY_FRAUD)
    day = c.cycle_times(rng, count, ctx.t0_us, ctx.t1_us, _HOURLY_LEGIT)
    starts = np.where(stealth, day, night)
    mean_gap = np.where(stealth, 3 * c.US_PER_HOUR, 7 * 60_000_000)
    gaps = rng.exponential(1.0, int(sizes.sum())) * np.repeat(mean_gap, sizes)
    offsets = c.burst_offsets(sizes, gaps)
    heads = np.cumsum(sizes) - sizes  # row index of each burst's first event
    duration = np.repeat(offsets[heads + sizes - 1], sizes)
    latest = np.maximum(ctx.t0_us, ctx.t1_us - 1 - duration)  # keep the burst in the window
    event = np.minimum(np.repeat(starts, sizes), latest) + offsets
    first = np.zeros(len(event), dtype=bool)
    first[heads] = True
    profile = np.where(np.repeat(stealth, sizes), STEALTH, FRAUD)
    return np.repeat(cards, sizes), np.minimum(event, ctx.t1_us - 1), profile, first


def make_block(ctx: c.BlockContext) -> pa.Table:
    """Generate one block of card transactions, sorted by event time."""
    rng, d, shift = ctx.rng, ctx.drift, ctx.drift.covariate
    f_card, f_time, f_profile, f_first = _bursts(ctx)
    n_legit = ctx.n - len(f_card)
    pool = n_cards(ctx.total_rows)
    l_card = np.minimum((pool * rng.random(n_legit) ** 1.25).astype(np.int64), pool - 1)
    l_time = c.cycle_times(rng, n_legit, ctx.t0_us, ctx.t1_us, _HOURLY_LEGIT)
    card = np.concatenate((l_card, f_card))
    event = np.concatenate((l_time, f_time))
    profile = np.concatenate((np.zeros(n_legit, dtype=np.int64), f_profile))
    first = np.concatenate((np.zeros(n_legit, dtype=bool), f_first))
    n = ctx.n

    channel_p = _CHANNEL_P.copy()
    channel_p[LEGIT, 1] += 0.15 * shift  # covariate drift: more e-commerce
    channel = c.choose_by_group(rng, channel_p, profile)
    is_ecom = (channel == 1).astype(np.int64)
    region_p = _REGION_P.copy()
    region_p[:2, 1:] *= 1.0 + shift  # covariate drift: more foreign spend
    region = c.choose_by_group(rng, region_p, profile * 2 + is_ecom)
    near = 1 + rng.integers(0, len(NEAR), n)
    far = 1 + len(NEAR) + rng.integers(0, len(FAR), n)
    country = np.where(region == 0, 0, np.where(region == 1, near, far))
    mcc = c.choose_by_group(rng, _MCC_W, (profile == FRAUD).astype(np.int64))
    mcc = np.where(channel == 2, _ATM, mcc)
    entry = c.choose_by_group(rng, _ENTRY_P, profile * 4 + channel)

    card_level = 0.4 * c.hash_normal(card, ctx.seed, 11)  # each card has its own spend level
    log_amount = _MCC_MU[mcc] + card_level + 0.8 * rng.standard_normal(n) + 0.35 * shift
    amount = np.exp(log_amount + _AMOUNT_UPLIFT[profile])
    amount = np.where(channel == 2, np.maximum(20, np.round(amount, -1)), amount)
    testing = first & (profile == FRAUD) & (rng.random(n) < 0.5)  # card-testing probe
    amount = np.where(testing, rng.uniform(0.5, 5.0, n), amount)
    amount = np.clip(np.round(amount, 2), 0.01, 100_000)

    per_cell = max(20, ctx.total_rows // 5000)  # merchants per (country, mcc) cell
    skew = np.where(profile == FRAUD, 1.0, 2.0)  # fraud hits unusual, unpopular merchants
    k = np.minimum((per_cell * rng.random(n) ** skew).astype(np.int64), per_cell - 1)
    merchant = (country * len(MCCS) + mcc) * per_cell + k

    order = np.argsort(event, kind="stable")
    entry_cats, entry = d.new_categories_in(ctx.drift_rng, ENTRY_MODES, entry[order], ENTRY_UNSEEN)
    amount_null = d.missing_mask(ctx.drift_rng, n)
    numbers = ctx.row_offset + np.arange(n, dtype=np.int64)
    columns = [
        c.fixed_ids("TXN-", numbers + 1, 12),
        c.fixed_ids("CARD-", card[order] + 1, 10),
        c.times(event[order]),
        c.fixed_ids("MER-", merchant[order] + 1, 10),
        c.floats(amount[order], amount_null),
        c.strings(MCCS, mcc[order]),
        c.strings(CHANNELS, channel[order]),
        c.strings(COUNTRIES, country[order]),
        c.strings(entry_cats, entry),
        c.ints(profile[order] != LEGIT),
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMA)


FAMILY = c.Family(
    name="fraud_detection",
    salt=2,
    schema=SCHEMA,
    id_column="transaction_id",
    entity_column="card_id",
    time_column="event_time",
    target="is_fraud",
    span_days=90.0,
    label_delay_days=45.0,
    new_category_column="entry_mode",
    missing_column="amount",
    make_block=make_block,
)
