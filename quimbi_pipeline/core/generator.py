"""Synthetic shop: monthly order and ticket CSV drops with planted, known customer behavior.

Each customer's orders come from a renewal process (gamma gaps, so regular shoppers really are
regular) run in "operational time"; a planted frequency drop or a growing trend is a warp of that
clock, churn cuts it. Order days are then moved to the customer's preferred weekdays and hours,
and every order and line draws its channel, discount, products and refunds from the customer's
personas (see ``generator_personas``). All work is vectorised over customers, orders and lines.
"""

import calendar
import json
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from quimbi_pipeline.core.generator_personas import (
    AXES,
    BECAME_DEAL_HUNTER,
    CATEGORY_WEIGHTS,
    CHANGE_AXES,
    CUSTOMER_ID_BASE,
    FREQUENCY_DROP,
    PRODUCTS_PER_BLOCK,
    STARTED_RETURNING,
    TIERS,
    VOCABULARY,
    Catalogue,
    Population,
    build_catalogue,
    code_of,
    draw_population,
    ground_truth,
    simulate_tickets,
)
from quimbi_pipeline.core.schema import SHOPIFY_COLUMNS, TICKET_COLUMNS

ORDER_ID_BASE = 1_000_001
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"

# Mean days between orders and gamma shape (higher = more regular) per frequency persona.
# one_time gets an unreachable gap: its only order is the one at time zero.
MEAN_GAP_DAYS: tuple[float, ...] = (10.0, 35.0, 180.0, 1e7)
GAP_SHAPE: tuple[float, ...] = (3.0, 4.0, 1.2, 1.0)
DROP_FACTOR = 0.1  # frequency_drop: the order rate falls to a tenth
GROWTH_START = 0.4  # growing: order rate ramps linearly from 0.4x to 1.6x over the tenure
OFF_PATTERN_SHARE = 0.12  # orders placed outside the customer's cadence persona
# Sales channel mix per communication persona over (web, pos, draft_order, mobile_app).
CHANNELS: tuple[str, ...] = ("web", "pos", "draft_order", "mobile_app")
CHANNEL_MIX = np.array([[0.93, 0.0, 0.02, 0.05], [0.12, 0.85, 0.03, 0.0], [0.35, 0.3, 0.05, 0.3]])
DISCOUNTED_ORDER_SHARE = (0.05, 0.80)  # full_price_buyer, deal_hunter
RETURN_RATE_KEEPER = 0.03
FAVOURITES = 4  # products a repeat_buyer keeps coming back to
FAVOURITE_SHARE = 0.7


@dataclass(frozen=True)
class GenerateReport:
    """What ``generate_shop`` wrote and how long it took."""

    customers: int
    order_lines: int
    orders: int
    tickets: int
    order_files: list[Path]
    ticket_files: list[Path]
    truth_path: Path
    start: date
    end: date
    seconds: float


def _add_months(day: date, months: int) -> date:
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    # Clamp the 29th-31st to the month's last day rather than failing.
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _renewal_times(
    rng: np.random.Generator, horizon: np.ndarray, mean_gap: np.ndarray, shape: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Event times (first one at 0) of a gamma renewal process per customer, up to its horizon.

    Returns (customer index, operational time). Customers with a negative horizon get none.
    """
    owners, times = [np.zeros(0, np.int64)], [np.zeros(0)]
    idx = np.flatnonzero(horizon >= 0)
    offset = np.zeros(idx.size)
    first_round = True
    while idx.size:
        # Draw enough gaps to pass the horizon almost always; the rare rest get another round.
        expected = (horizon[idx] - offset) / mean_gap[idx]
        counts = np.ceil(expected + 4 * np.sqrt(expected) + 4).astype(np.int64)
        own = np.repeat(idx, counts)
        gaps = rng.gamma(shape[own]) * (mean_gap / shape)[own]
        starts = np.cumsum(counts) - counts
        if first_round:
            gaps[starts] = 0.0
        total = np.cumsum(gaps)
        t = total - np.repeat(total[starts] - gaps[starts] - offset, counts)
        keep = t <= horizon[own]
        owners.append(own[keep])
        times.append(t[keep])
        last = t[starts + counts - 1]
        more = last <= horizon[idx]
        idx, offset, first_round = idx[more], last[more], False
    return np.concatenate(owners), np.concatenate(times)


@dataclass(frozen=True)
class _Orders:
    """Order-level arrays, sorted chronologically (so position = OrderID - ORDER_ID_BASE)."""

    owner: np.ndarray
    day: np.ndarray
    micros: np.ndarray  # wall-clock timestamp, microseconds since the epoch
    after_change: np.ndarray
    channel: np.ndarray
    discount_pct: np.ndarray
    lines: np.ndarray


def _order_days(rng: np.random.Generator, pop: Population, total_days: int):
    """Customer and day of every order, with frequency drops, growth and churn applied."""
    freq = pop.codes["purchase_frequency"]
    first = pop.planned_first_day
    last_day = np.where(pop.churn_day >= 0, pop.churn_day, total_days - 1)
    span = (last_day - first).astype(float)
    drop = pop.change_kind == FREQUENCY_DROP
    grow = pop.codes["loyalty_trajectory"] == code_of("loyalty_trajectory", "growing")
    pivot = (pop.change_day - first).astype(float)
    a, b = GROWTH_START, 2 * (1 - GROWTH_START)
    # Operational horizon: the warped length of the customer's window.
    horizon = np.where(drop, pivot + DROP_FACTOR * (span - pivot), span)
    horizon = np.where(pop.has_orders, horizon, -1.0)
    safe_freq = np.maximum(freq, 0)
    jitter = rng.lognormal(0.0, 0.25, freq.size)
    mean_gap = np.asarray(MEAN_GAP_DAYS)[safe_freq] * jitter
    owner, tau = _renewal_times(rng, horizon, mean_gap, np.asarray(GAP_SHAPE)[safe_freq])
    # Back from operational to real time.
    piv, sp = pivot[owner], np.maximum(span[owner], 1.0)
    real = np.where(drop[owner] & (tau > piv), piv + (tau - piv) / DROP_FACTOR, tau)
    ramp = (np.sqrt(a * a + 2 * b * tau / sp) - a) / b * sp
    real = np.where(grow[owner], ramp, real)
    day = np.minimum(first[owner] + np.floor(real).astype(np.int32), last_day[owner])
    return owner, day


def _apply_cadence(
    rng: np.random.Generator, pop: Population, owner: np.ndarray, day: np.ndarray, start: date
):
    """Move each order to a weekday and hour that fit the customer's cadence persona."""
    cadence = pop.codes["purchase_cadence"][owner]
    n = owner.size
    on_pattern = rng.random(n) >= OFF_PATTERN_SHARE
    weekend = on_pattern & (cadence == code_of("purchase_cadence", "weekend_daytime"))
    weekday = on_pattern & (cadence == code_of("purchase_cadence", "weekday_business_hours"))
    evening = on_pattern & (cadence == code_of("purchase_cadence", "evening_owl"))
    dow = (start.weekday() + day) % 7
    target = np.where(
        weekend, 5 + rng.integers(0, 2, n), np.where(weekday, rng.integers(0, 5, n), dow)
    )
    # Shift backwards only, so a churner never orders after churn_date.
    day = day - (dow - target) % 7
    day = np.where(day < 0, day + 7, day)
    hour = rng.integers(8, 24, n)
    hour = np.where(weekend, rng.integers(10, 18, n), hour)
    hour = np.where(weekday, rng.integers(9, 17, n), hour)
    hour = np.where(evening, (19 + rng.integers(0, 7, n)) % 24, hour)
    seconds = hour * 3600 + rng.integers(0, 3600, n)
    return day, seconds


def _epoch_micros(start: date, day: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    epoch_day = (start - date(1970, 1, 1)).days
    return ((epoch_day + day.astype(np.int64)) * 86_400 + seconds) * 1_000_000


def _simulate_orders(
    rng: np.random.Generator, pop: Population, start: date, total_days: int
) -> _Orders:
    """Every order with its timing, channel, discount and number of lines."""
    owner, day = _order_days(rng, pop, total_days)
    day, seconds = _apply_cadence(rng, pop, owner, day, start)
    micros = _epoch_micros(start, day, seconds)
    order = np.lexsort((owner, micros))
    owner, day, micros = owner[order], day[order], micros[order]
    n = owner.size
    kind = pop.change_kind[owner]
    after = (kind > 0) & (day > pop.change_day[owner])
    persona = pop.codes["communication_preference"][owner]
    cum = np.cumsum(CHANNEL_MIX, axis=1)[persona]
    channel = (rng.random(n)[:, None] > cum[:, :-1]).sum(axis=1).astype(np.int8)
    deal = pop.codes["price_sensitivity"][owner] == code_of("price_sensitivity", "deal_hunter")
    deal |= after & (kind == BECAME_DEAL_HUNTER)
    discounted = rng.random(n) < np.asarray(DISCOUNTED_ORDER_SHARE)[deal.astype(int)]
    # Coupon-like whole percentages: 20-40% for deal hunters, 5-15% otherwise.
    pct = np.where(deal, rng.integers(20, 41, n), rng.integers(5, 16, n)) / 100
    explorer = pop.codes["category_exploration"][owner] == code_of(
        "category_exploration", "explorer"
    )
    lines = 1 + np.minimum(rng.poisson(np.where(explorer, 0.4, 0.12)), 7)
    return _Orders(
        owner=owner,
        day=day,
        micros=micros,
        after_change=after,
        channel=channel,
        discount_pct=np.where(discounted, pct, 0.0),
        lines=lines,
    )


def _favourites(rng: np.random.Generator, pop: Population, home: np.ndarray) -> np.ndarray:
    """Each customer's few favourite products: in their home category unless an explorer."""
    n = home.size
    explorer = pop.codes["category_exploration"] == code_of("category_exploration", "explorer")
    spread = rng.choice(len(CATEGORY_WEIGHTS), size=(n, FAVOURITES), p=CATEGORY_WEIGHTS)
    cat = np.where(explorer[:, None], spread, home[:, None])
    tier = np.maximum(pop.codes["purchase_value"], 0)[:, None]
    return (cat * len(TIERS) + tier) * PRODUCTS_PER_BLOCK + rng.integers(
        0, PRODUCTS_PER_BLOCK, (n, FAVOURITES)
    )


def _order_lines(
    rng: np.random.Generator, pop: Population, orders: _Orders, catalogue: Catalogue
) -> pl.DataFrame:
    """Expand orders into product lines with quantities, sales, discounts and refunds."""
    n_customers = pop.has_orders.size
    home = rng.choice(len(CATEGORY_WEIGHTS), size=n_customers, p=CATEGORY_WEIGHTS)
    favourites = _favourites(rng, pop, home)
    high_rate = rng.uniform(0.3, 0.5, n_customers)
    returner = pop.codes["return_behavior"] == code_of("return_behavior", "high_returner")

    line_order = np.repeat(np.arange(orders.owner.size), orders.lines)
    cust = orders.owner[line_order]
    n = cust.size
    tier = np.maximum(pop.codes["purchase_value"], 0)[cust]
    tier = np.where(rng.random(n) < 0.8, tier, rng.integers(0, len(TIERS), n))
    explorer = pop.codes["category_exploration"] == code_of("category_exploration", "explorer")
    roam = rng.choice(len(CATEGORY_WEIGHTS), size=n, p=CATEGORY_WEIGHTS)
    cat = np.where(explorer[cust], roam, home[cust])
    product = (cat * len(TIERS) + tier) * PRODUCTS_PER_BLOCK
    product += rng.integers(0, PRODUCTS_PER_BLOCK, n)
    repeat = pop.codes["repurchase_behavior"] == code_of("repurchase_behavior", "repeat_buyer")
    loyal = repeat[cust] & (rng.random(n) < FAVOURITE_SHARE)
    product = np.where(loyal, favourites[cust, rng.integers(0, FAVOURITES, n)], product)
    qty = 1 + rng.poisson(0.3, n)
    # A product picked twice in one order becomes one line with the summed quantity, as a shop
    # export has it (identical lines would read as duplicate rows).
    key, where = np.unique(line_order * catalogue.price.size + product, return_inverse=True)
    qty = np.bincount(where, weights=qty).astype(np.int64)
    line_order, product = key // catalogue.price.size, key % catalogue.price.size
    cust = orders.owner[line_order]
    n = cust.size

    sales = np.round(catalogue.price[product] * qty, 2)
    discount = np.round(sales * orders.discount_pct[line_order], 2)
    returning = returner[cust] | (
        orders.after_change[line_order] & (pop.change_kind[cust] == STARTED_RETURNING)
    )
    refunded = rng.random(n) < np.where(returning, high_rate[cust], RETURN_RATE_KEEPER)
    refund = np.where(refunded, np.round(sales - discount, 2), 0.0)

    products = catalogue.products.select(pl.all().gather(pl.Series(product)))
    return (
        pl.DataFrame(
            {
                "OrderID": ORDER_ID_BASE + line_order,
                "Customer_ID": CUSTOMER_ID_BASE + cust.astype(np.int64),
                "Date": pl.Series(orders.micros[line_order]).cast(pl.Datetime("us")),
            }
        )
        .hstack(products)
        .with_columns(
            QTY=pl.Series(qty),
            Sales=pl.Series(sales),
            TotalDiscount=pl.Series(discount),
            Refunds=pl.Series(refund),
            Source=pl.Series(CHANNELS).gather(pl.Series(orders.channel[line_order])),
        )
        .select(SHOPIFY_COLUMNS)
    )


def _month_starts(start: date, end: date) -> list[date]:
    first = start.replace(day=1)
    count = (end.year - first.year) * 12 + end.month - first.month + 1
    return [_add_months(first, k) for k in range(count)]


def _write_monthly(frame: pl.DataFrame, stamp: str, prefix: str, months: list[date], folder: Path):
    """Write one CSV per calendar month by slicing the chronologically sorted frame."""
    edges = [
        (m - date(1970, 1, 1)).days * 86_400_000_000 for m in [*months, _add_months(months[-1], 1)]
    ]
    bounds = np.searchsorted(frame[stamp].cast(pl.Int64).to_numpy(), edges)
    paths = []
    for k, month in enumerate(months):
        path = folder / f"{prefix}_{month:%Y_%m}.csv"
        part = frame.slice(int(bounds[k]), int(bounds[k + 1] - bounds[k]))
        part.write_csv(path, datetime_format=DATETIME_FORMAT, float_precision=2)
        paths.append(path)
    return paths


def _manifest(
    truth: pl.DataFrame, seed: int, start: date, end: date, months: int, ticket_share: float
) -> dict:
    counts = {
        axis: dict(truth[f"persona__{axis}"].drop_nulls().value_counts(sort=True).iter_rows())
        for axis in AXES
    }
    return {
        "seed": seed,
        "customers": truth.height,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "months": months,
        "ticket_share": ticket_share,
        "axes": {axis: list(VOCABULARY[axis]) for axis in AXES},
        "changes": {kind: list(axes) for kind, axes in CHANGE_AXES.items()},
        "persona_counts": counts,
        "notes": [
            "Persona labels describe behavior before change_date; changed_axes lists the axes "
            "whose signals shift after it (frequency to a tenth, deal hunting, 30-50% returns).",
            "churn_date: the customer places no order after it; churners are loyalty declining.",
            "Order-based personas are null for support-only contacts (tickets, no orders).",
            "one_time customers, and customers with under 6 months of tenure, are never planted "
            "with a change, churn or growth, so their loyalty_trajectory is steady; their "
            "repurchase_behavior cannot show in a single order.",
            "customer_maturity uses thirds of the history on the first order date.",
        ],
    }


def generate_shop(
    customers: int,
    out_dir: Path,
    *,
    seed: int = 0,
    start: date = date(2023, 1, 1),
    months: int = 36,
    ticket_share: float = 0.35,
) -> GenerateReport:
    """Write a reproducible synthetic shop (monthly order and ticket CSVs plus ground truth)."""
    began = time.perf_counter()
    if customers < 1:
        raise ValueError(f"customers must be >= 1, got {customers}")
    if months < 12:
        raise ValueError(f"months must be >= 12 to plant changes after 6 months, got {months}")
    if not 0.0 <= ticket_share <= 1.0:
        raise ValueError(f"ticket_share must lie in [0, 1], got {ticket_share}")
    out_dir = Path(out_dir)
    end = _add_months(start, months) - timedelta(days=1)
    total_days = (end - start).days + 1
    # Separate streams, so e.g. the catalogue does not depend on the number of customers.
    streams = np.random.default_rng(seed).spawn(5)
    rng_pop, rng_catalogue, rng_orders, rng_lines, rng_tickets = streams
    catalogue = build_catalogue(rng_catalogue)
    pop = draw_population(rng_pop, customers, total_days, ticket_share)
    orders = _simulate_orders(rng_orders, pop, start, total_days)
    lines = _order_lines(rng_lines, pop, orders, catalogue)
    first_day = np.full(customers, total_days, dtype=np.int64)
    np.minimum.at(first_day, orders.owner, orders.day)
    first_day = np.where(pop.has_orders, first_day, -1)
    epoch_day = (start - date(1970, 1, 1)).days
    tickets = simulate_tickets(rng_tickets, pop, first_day, total_days, epoch_day)

    drops, truth_dir = out_dir / "drops", out_dir / "ground_truth"
    drops.mkdir(parents=True, exist_ok=True)
    truth_dir.mkdir(parents=True, exist_ok=True)
    month_list = _month_starts(start, end)
    order_files = _write_monthly(lines, "Date", "orders", month_list, drops)
    ticket_files = _write_monthly(
        tickets.select(TICKET_COLUMNS), "created_at", "tickets", month_list, drops
    )
    truth = ground_truth(pop, first_day, start, total_days)
    truth_path = truth_dir / "customers.parquet"
    truth.write_parquet(truth_path)
    manifest = _manifest(truth, seed, start, end, months, ticket_share)
    (truth_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return GenerateReport(
        customers=customers,
        order_lines=lines.height,
        orders=orders.owner.size,
        tickets=tickets.height,
        order_files=order_files,
        ticket_files=ticket_files,
        truth_path=truth_path,
        start=start,
        end=end,
        seconds=time.perf_counter() - began,
    )
