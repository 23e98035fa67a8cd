"""Support features: problem complexity and support history.

When the shop has support tickets these read the tickets (``t_`` columns); when it has none,
problem complexity falls back to order-based proxies (the reference system's only source) and
support history is not applicable. Communication preference reads the order channels in
either case (``features_orders.communication_exprs``; why: ``core.axes``). A column keeps its
name in both modes; ``AxisApplicability.source`` says which formula filled it. Formulas are
documented in ``core.axes``.
"""

from datetime import datetime

import polars as pl
import polars.selectors as cs

from quimbi_pipeline.core.axes import axis
from quimbi_pipeline.core.features_common import (
    CUSTOMER,
    DAYS_PER_MONTH,
    US_PER_DAY,
    ratio,
    share,
)
from quimbi_pipeline.core.features_products import refund_rate_expr

# Real-time ticket channels, where an agent is with the customer while the issue is handled.
LIVE_TICKET_CHANNELS = ("phone", "chat", "live_chat", "video")
# A ticket this long or this slow to resolve is a complex one.
COMPLEX_MESSAGES = 5.0
COMPLEX_RESOLUTION_HOURS = 48.0
# Topics about money rather than the product (case-insensitive substrings).
MONEY_TOPIC_PATTERN = r"(?i)(bill|payment|pric|discount|coupon|promo|refund|charge)"

SUPPORT_AXES = ("problem_complexity_profile", "support_history")


def prepare_tickets(tickets: pl.LazyFrame, as_of: datetime) -> pl.DataFrame:
    """Tickets of known customers created on or before ``as_of``, sorted by customer and time."""
    return (
        tickets.filter(
            pl.col(CUSTOMER).is_not_null()
            & pl.col("created_at").is_not_null()
            & (pl.col("created_at") <= pl.lit(as_of))
        )
        .with_columns(pl.col("message_count", "resolution_hours").clip(lower_bound=0.0))
        # All columns as keys: one canonical order whatever order the tickets arrived in.
        .sort(CUSTOMER, "created_at", pl.all().exclude(CUSTOMER, "created_at"), nulls_last=True)
        .collect()
    )


def ticket_aggregates(tickets: pl.DataFrame) -> pl.DataFrame:
    """Raw per-customer statistics of the prepared tickets (``t_`` columns)."""
    messages, hours = pl.col("message_count"), pl.col("resolution_hours")
    # Kleene logic: a ticket with one unknown measure is complex if the other one says so.
    complex_ticket = (messages >= COMPLEX_MESSAGES) | (hours >= COMPLEX_RESOLUTION_HOURS)
    topics = (
        tickets.select(CUSTOMER, "topic")
        .drop_nulls()
        .unique()
        .group_by(CUSTOMER)
        .agg(t_topics=pl.len())
    )
    aggregates = (
        tickets.group_by(CUSTOMER)
        .agg(
            t_n=pl.len(),
            t_messages=messages.mean(),
            t_hours=hours.mean(),
            t_rated=pl.col("satisfaction").count(),
            t_low_rated=(pl.col("satisfaction") <= 2).sum(),
            t_live=pl.col("channel").is_in(LIVE_TICKET_CHANNELS).sum(),
            t_complex=complex_ticket.sum(),
            t_money=pl.col("topic").str.contains(MONEY_TOPIC_PATTERN).sum(),
        )
        .join(topics, on=CUSTOMER, how="left")
    )
    return aggregates.with_columns(cs.numeric().cast(pl.Float64).fill_null(0.0))


def support_feature_exprs(as_of: datetime, *, use_tickets: bool) -> dict[str, pl.Expr]:
    """The support-axis columns, from tickets or (``use_tickets=False``) order proxies."""
    tickets = pl.col("t_n")
    if not use_tickets:
        proxies = {
            "problem_complexity_profile__issue_rate": share(pl.col("o_ref_orders"), pl.col("o_n")),
            # Distinct (order, product) combinations over orders: distinct products per order.
            "problem_complexity_profile__case_effort": ratio(pl.col("p_orders_sum"), pl.col("o_n")),
            "problem_complexity_profile__escalated_share": refund_rate_expr(),
            "problem_complexity_profile__issue_breadth": pl.col("k_n"),
            "problem_complexity_profile__money_issue_share": share(
                pl.col("o_disc"), pl.col("o_gross")
            ),
        }
        # Support history has no order proxy: zeros, and the axis is reported not applicable.
        zeros = {column: pl.lit(0.0) for column in axis("support_history").columns()}
        return {**proxies, **zeros}
    tenure_days = (pl.lit(as_of) - pl.col("o_first")).dt.total_microseconds() / US_PER_DAY
    tenure_months = pl.max_horizontal(tenure_days / DAYS_PER_MONTH, pl.lit(1.0))
    complex_share = share(pl.col("t_complex"), tickets)
    return {
        "problem_complexity_profile__issue_rate": share(tickets, pl.col("o_n")),
        "problem_complexity_profile__case_effort": pl.col("t_messages"),
        "problem_complexity_profile__escalated_share": complex_share,
        "problem_complexity_profile__issue_breadth": pl.col("t_topics"),
        "problem_complexity_profile__money_issue_share": share(pl.col("t_money"), tickets),
        "support_history__tickets_per_month": tickets / tenure_months,
        "support_history__mean_resolution_hours": pl.col("t_hours"),
        "support_history__low_satisfaction_share": share(pl.col("t_low_rated"), pl.col("t_rated")),
        "support_history__live_channel_share": share(pl.col("t_live"), tickets),
    }
