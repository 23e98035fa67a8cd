"""Order-level features: frequency, value, price sensitivity, cadence, maturity, loyalty.

Lines are rolled up to one row per order, sorted by customer, time and order, so every
per-customer statistic is a plain aggregation over orders (see ``features_common`` for why the
sequence signals are helper columns first). Formulas are documented in ``core.axes``.
"""

from datetime import datetime

import polars as pl
import polars.selectors as cs

from quimbi_pipeline.core.features_common import (
    CUSTOMER,
    CUSTOMER_CODE,
    DAYS_PER_MONTH,
    DECAY_DAYS,
    DEFAULT_TYPICAL_GAP_DAYS,
    MAX_EXPECTED_GAP_DAYS,
    MIN_EXPECTED_GAP_DAYS,
    ORDER_CODE,
    OVERDUE_GAPS,
    RECENT_DAYS,
    RECENT_ORDERS,
    US_PER_DAY,
    channel_counts,
    channel_switches,
    inverse_cv,
    position_in_run,
    ratio,
    run_start,
    share,
)

# Order channels where a member of staff places the order with the customer in real time.
LIVE_ORDER_CHANNELS = ("pos", "draft_order", "phone")


def order_table(lines: pl.DataFrame) -> pl.DataFrame:
    """One row per order, sorted by customer, time and order code (ties stable)."""
    ts = pl.col("ts")
    return (
        lines.group_by(ORDER_CODE)
        .agg(
            pl.col(CUSTOMER_CODE).first(),
            pl.col(CUSTOMER).first(),
            ts=pl.col("ordered_at").min(),
            timed=pl.col("timed").any(),
            gross=pl.col("sales").sum(),
            disc=pl.col("discount").sum(),
            ref=pl.col("refund").sum(),
            # An order has one channel; min() picks it deterministically if lines disagree.
            channel=pl.col("channel").min(),
        )
        .with_columns(
            value=(pl.col("gross") - pl.col("disc")).clip(lower_bound=0.0),
            depth=ratio(pl.col("disc"), pl.col("gross"), default=1.0).clip(0.0, 1.0),
            day=ts.dt.date().cast(pl.Int32),
            weekday=ts.dt.weekday(),
            hour=ts.dt.hour(),
            month=ts.dt.month(),
        )
        .sort(CUSTOMER_CODE, "ts", ORDER_CODE)
    )


def order_aggregates(orders: pl.DataFrame, as_of: datetime) -> pl.DataFrame:
    """Raw per-customer statistics of the sorted order table (``o_`` columns)."""
    ts, value, hour, timed = pl.col("ts"), pl.col("value"), pl.col("hour"), pl.col("timed")
    start = run_start(CUSTOMER_CODE)
    step = pl.col("day") - pl.col("day").shift(1)
    helpers = orders.with_columns(
        start=start,
        index=position_in_run(start).cast(pl.Float64),
        first_ts=pl.when(start).then(ts).forward_fill(),
        # Sorted by time, so the positive day steps are the gaps between purchase days.
        gap=pl.when(~start & (step > 0)).then(step).cast(pl.Float64),
        days_before=(pl.lit(as_of) - ts).dt.total_microseconds() / US_PER_DAY,
        switch=channel_switches(start, "channel"),
        splurge=value > 2 * value.mean().over(CUSTOMER_CODE),
        orders=pl.len().over(CUSTOMER_CODE),
    ).with_columns(
        month_index=(
            (ts - pl.col("first_ts")).dt.total_microseconds() / (US_PER_DAY * DAYS_PER_MONTH)
        ).floor(),
        recent=pl.col("index") >= pl.col("orders") - RECENT_ORDERS,
        # exp(days after the first order / DECAY_DAYS): times exp(-tenure / DECAY_DAYS) at
        # as_of, their sum is the decayed order count, and the sum itself does not read as_of.
        growth=(
            (ts - pl.col("first_ts")).dt.total_microseconds() / (US_PER_DAY * DECAY_DAYS)
        ).exp(),
    )
    new_month = pl.col("start") | (pl.col("month_index") != pl.col("month_index").shift(1))
    days_before, disc, recent = pl.col("days_before"), pl.col("disc"), pl.col("recent")
    aggregates = (
        helpers.with_columns(pl.col(CUSTOMER_CODE).set_sorted())
        .group_by(CUSTOMER_CODE)
        .agg(
            pl.col(CUSTOMER).first(),
            o_n=pl.len(),
            o_first=ts.first(),
            o_last=ts.last(),
            o_gross=pl.col("gross").sum(),
            o_disc=disc.sum(),
            o_ref=pl.col("ref").sum(),
            o_value_mean=value.mean(),
            o_value_median=value.median(),
            o_value_max=value.max(),
            o_value_std=value.std(ddof=0),
            o_index_value=(pl.col("index") * value).sum(),
            o_disc_orders=(disc > 0).sum(),
            o_depth_sum=pl.when(disc > 0).then(pl.col("depth")).otherwise(0.0).sum(),
            o_ref_orders=(pl.col("ref") > 0).sum(),
            o_weekend=(pl.col("weekday") >= 6).sum(),
            o_timed=timed.sum(),
            o_business=(timed & (hour >= 9) & (hour < 17)).sum(),
            o_evening=(timed & (hour >= 17) & (hour < 23)).sum(),
            o_night=(timed & ((hour >= 23) | (hour < 6))).sum(),
            o_holiday=pl.col("month").is_in([11, 12]).sum(),
            o_last90=(days_before < RECENT_DAYS).sum(),
            o_prev90=((days_before >= RECENT_DAYS) & (days_before < 2 * RECENT_DAYS)).sum(),
            o_month_index_sum=pl.col("month_index").sum(),
            o_active_months=new_month.sum(),
            o_n_gaps=pl.col("gap").count(),
            o_gap_std=pl.col("gap").std(ddof=0),
            o_day_span=(pl.col("day").last() - pl.col("day").first()),
            o_splurge=pl.col("splurge").sum(),
            o_ch_n=pl.col("channel").count(),
            o_ch_switch=pl.col("switch").sum(),
            o_ch_live=pl.col("channel").is_in(LIVE_ORDER_CHANNELS).sum(),
            o_recent_n=recent.sum(),
            o_recent_gross=pl.when(recent).then(pl.col("gross")).otherwise(0.0).sum(),
            o_recent_disc=pl.when(recent).then(disc).otherwise(0.0).sum(),
            o_recent_disc_orders=(recent & (disc > 0)).sum(),
            o_recent_ref=pl.when(recent).then(pl.col("ref")).otherwise(0.0).sum(),
            o_recent_ref_orders=(recent & (pl.col("ref") > 0)).sum(),
            o_growth_sum=pl.col("growth").sum(),
        )
        .join(channel_counts(orders, CUSTOMER_CODE, "channel", "o"), on=CUSTOMER_CODE, how="left")
    )
    # Counts come back unsigned: as floats, differences such as last-90 minus previous-90 cannot
    # wrap around. Empty selections (no channel, no gap) give null, which means 0 here.
    return aggregates.with_columns(
        cs.numeric().exclude(CUSTOMER_CODE).cast(pl.Float64).fill_null(0.0)
    )


def typical_gap_days(order_aggs: pl.DataFrame) -> float:
    """Median of the customers' mean gaps between purchase days; a default if nobody has one."""
    gaps = order_aggs.filter(pl.col("o_n_gaps") >= 1).select(
        (pl.col("o_day_span") / pl.col("o_n_gaps")).median()
    )
    value = gaps.item() if gaps.height else None
    return float(value) if value is not None else DEFAULT_TYPICAL_GAP_DAYS


def _days_to_as_of(column: str, as_of: datetime) -> pl.Expr:
    return (pl.lit(as_of) - pl.col(column)).dt.total_microseconds() / US_PER_DAY


def order_feature_exprs(as_of: datetime, typical_gap: float) -> dict[str, pl.Expr]:
    """The metric columns and the order-axis columns, as expressions over the raw aggregates."""
    n = pl.col("o_n")
    tenure_days = _days_to_as_of("o_first", as_of)
    since_last = _days_to_as_of("o_last", as_of)
    tenure_months = tenure_days / DAYS_PER_MONTH
    rate = n / pl.max_horizontal(tenure_months, pl.lit(1.0))
    n_gaps = pl.col("o_n_gaps")
    own_gap = ratio(pl.col("o_day_span"), n_gaps)
    # One purchase day: the gap is at least the time since that day (censored), and a brand-new
    # customer should not look like a fast repeater, so the population's typical gap is a floor.
    mean_gap = (
        pl.when(n_gaps >= 1)
        .then(own_gap)
        .otherwise(pl.max_horizontal(since_last, pl.lit(typical_gap)))
    )
    expected_gap = (pl.when(n_gaps >= 1).then(own_gap).otherwise(pl.lit(typical_gap))).clip(
        MIN_EXPECTED_GAP_DAYS, MAX_EXPECTED_GAP_DAYS
    )
    churn = 1.0 - (-since_last / (2.0 * expected_gap)).exp()
    net = pl.col("o_gross") - pl.col("o_disc") - pl.col("o_ref")

    # Slope of order value over the order index 0..n-1, relative to the mean order value.
    index_mean = (n - 1.0) / 2.0
    index_var_sum = n * (n * n - 1.0) / 12.0
    slope = ratio(pl.col("o_index_value") - index_mean * pl.col("o_value_mean") * n, index_var_sum)
    value_trend = (
        pl.when(n >= 3).then(ratio(slope, pl.col("o_value_mean")).clip(-1.0, 1.0)).otherwise(0.0)
    )
    established = inverse_cv(pl.col("o_value_std"), pl.col("o_value_mean"), n, 2)
    # One order says nothing about consistency: such customers get the typical value of those
    # with 2+ orders (over the whole frame), not 0, which would rank them the most erratic.
    typical = established.filter(n >= 2).median().fill_null(0.0)
    consistency = pl.when(n >= 2).then(established).otherwise(typical)

    # Decayed rather than windowed: an order leaving a 90-day window made the old formula jump
    # from about 0 to -1 in one week, a move in the segments that no behavior caused.
    decayed = pl.col("o_growth_sum") * (-tenure_days / DECAY_DAYS).exp()
    recent_rate = decayed / DECAY_DAYS
    lifetime_rate = ratio(n, tenure_days)
    acceleration = (
        pl.when(tenure_days > RECENT_DAYS)
        .then(ratio(recent_rate - lifetime_rate, recent_rate + lifetime_rate))
        .otherwise(0.0)
    )
    # A flag, not a level: a churning weekly shopper passes a gap a week, so steps (or the
    # smooth churn risk) move the segment a little every week and never by 0.3 in one.
    overdue = (
        pl.when((n_gaps >= 1) & (since_last >= OVERDUE_GAPS * expected_gap))
        .then(1.0)
        .otherwise(0.0)
    )
    months = (tenure_days / DAYS_PER_MONTH).floor() + 1.0
    order_trend = (
        pl.when((n >= 2) & (months >= 2))
        .then((pl.col("o_month_index_sum") / n - (months - 1.0) / 2.0) * 12.0 / (months**2 - 1.0))
        .otherwise(0.0)
    )
    timed = pl.col("o_timed")
    return {
        "lifetime_value": net,
        "total_orders": n,
        "avg_order_value": net / n,
        "days_since_last_purchase": since_last,
        "customer_tenure_days": tenure_days,
        "churn_risk_score": churn,
        "purchase_frequency__orders_per_month": rate,
        "purchase_frequency__mean_gap_days": mean_gap,
        "purchase_frequency__regularity": inverse_cv(pl.col("o_gap_std"), own_gap, n_gaps, 2),
        "purchase_frequency__orders_last_90d": pl.col("o_last90"),
        "purchase_frequency__days_since_last_order": since_last,
        "purchase_frequency__total_orders": n,
        "purchase_value__lifetime_value": net.clip(lower_bound=0.0),
        "purchase_value__mean_order_value": pl.col("o_value_mean"),
        "purchase_value__median_order_value": pl.col("o_value_median"),
        "purchase_value__max_order_value": pl.col("o_value_max"),
        "purchase_value__value_consistency": consistency,
        "price_sensitivity__discounted_order_share": share(pl.col("o_disc_orders"), n),
        "price_sensitivity__mean_discount_per_order": pl.col("o_disc") / n,
        "price_sensitivity__discount_depth": ratio(pl.col("o_depth_sum"), pl.col("o_disc_orders")),
        "price_sensitivity__discount_share_of_spend": share(pl.col("o_disc"), pl.col("o_gross")),
        "price_sensitivity__recent_discounted_order_share": share(
            pl.col("o_recent_disc_orders"), pl.col("o_recent_n")
        ),
        "price_sensitivity__recent_discount_share_of_spend": share(
            pl.col("o_recent_disc"), pl.col("o_recent_gross")
        ),
        "purchase_cadence__weekend_share": share(pl.col("o_weekend"), n),
        "purchase_cadence__business_hours_share": share(pl.col("o_business"), timed),
        "purchase_cadence__evening_share": share(pl.col("o_evening"), timed),
        "purchase_cadence__night_share": share(pl.col("o_night"), timed),
        "purchase_cadence__holiday_season_share": share(pl.col("o_holiday"), n),
        "customer_maturity__tenure_months": tenure_months,
        "customer_maturity__lifecycle_stage": pl.when(tenure_months < 3)
        .then(0.0)
        .when(tenure_months < 12)
        .then(1.0 / 3.0)
        .when(tenure_months < 24)
        .then(2.0 / 3.0)
        .otherwise(1.0),
        "customer_maturity__acceleration": acceleration,
        "loyalty_trajectory__order_trend": order_trend,
        "loyalty_trajectory__value_trend": value_trend,
        "loyalty_trajectory__recency_momentum": ratio(
            pl.col("o_last90") - pl.col("o_prev90"), pl.col("o_last90") + pl.col("o_prev90")
        ),
        "loyalty_trajectory__active_month_share": share(pl.col("o_active_months"), months),
        "loyalty_trajectory__overdue": overdue,
        "value_sophistication__splurge_share": pl.when(n >= 2)
        .then(share(pl.col("o_splurge"), n))
        .otherwise(0.0),
        **communication_exprs(),
    }


def communication_exprs() -> dict[str, pl.Expr]:
    """communication_preference from the orders' sales channels (why not tickets: core.axes)."""
    orders = pl.col("o_ch_n")
    return {
        "communication_preference__primary_channel_share": share(pl.col("o_ch_max"), orders),
        "communication_preference__channel_count": pl.col("o_ch_distinct"),
        "communication_preference__channel_switch_rate": share(pl.col("o_ch_switch"), orders - 1.0),
        "communication_preference__live_channel_share": share(pl.col("o_ch_live"), orders),
    }
