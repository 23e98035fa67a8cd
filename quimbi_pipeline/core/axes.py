"""The 14 behavioral axes and the per-customer features each is clustered on.

Every feature is one Float64 column named ``f"{axis}__{feature}"`` in the frame built by
``quimbi_pipeline.core.features.compute_customer_features``; its ``description`` is the final
formula. Conventions used in the descriptions:

- *gross* is a line's ``sales``; an order's *value* is ``sum(sales - discount)`` over its lines
  (what was paid), floored at 0; money inputs that are null count as 0.
- *month* is 30.4375 days; *tenure* is days from the customer's first order to ``as_of``.
- *purchase days* are the distinct calendar dates with an order; gaps are in days between
  consecutive purchase days, so split carts placed on one day are one shopping occasion.
- a *product* is ``product_id``, else ``sku``, else ``product_title``; quantity weights use
  ``quantity`` (a null quantity counts as 1).
- spread features (CV based) need two observations; with fewer they are 0, "not established",
  except where a description says otherwise.
- features of the support axes (problem complexity, support history) read tickets when the
  shop has any, else orders (``source`` ``orders_proxy``); both formulas are given as
  ``tickets: ...; orders: ...``. Communication preference always reads the order channels
  (see that axis).

``transform`` is applied at fit time before scaling (``core.segment_scaling``): ``log1p`` for
money, counts and durations (always >= 0 here), ``identity`` for shares, ratios and slopes.

Each signal is clustered on one axis only. The reference computed some on two axes (value
trend, spend consistency, orders per month, product concentration as 1 - diversity, primary
category share, products per line as 1 - repeat product rate, and in ticket shops message count
and complex-ticket share). A signal clustered twice ties the two axes together and, where it is
off-topic, buries the axis's own structure: on generated shops, against the planted personas,
customer_maturity rose from ARI 0.30 to 0.47 without orders per month (and to 0.5-0.6 without
the recency share noted there), product_knowledge from 0.01 to 0.18 without product
concentration, value_sophistication from 0.12 to 0.48 without spend consistency and with the
premium price fix (``features_products.PREMIUM_UNIT_PRICE_QUANTILE``). Each signal now sits on
the axis whose question it answers, and a comment names the axis that no longer carries it;
``quimbi_pipeline_tests/core/test_axis_separation.py`` checks on a generated shop that no column
repeats, or mirrors as 1 - x, a column of another axis.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class AxisFeature:
    name: str
    transform: str
    high: str
    low: str
    description: str


@dataclass(frozen=True)
class Axis:
    name: str
    description: str
    features: tuple[AxisFeature, ...]

    def columns(self) -> list[str]:
        return [f"{self.name}__{f.name}" for f in self.features]


def _log(name: str, high: str, low: str, description: str) -> AxisFeature:
    return AxisFeature(name, "log1p", high, low, description)


def _id(name: str, high: str, low: str, description: str) -> AxisFeature:
    return AxisFeature(name, "identity", high, low, description)


AXES: tuple[Axis, ...] = (
    Axis(
        "purchase_frequency",
        "How often the customer buys.",
        (
            _log("orders_per_month", "frequent_buyer", "occasional_buyer",
                 "distinct orders / max(tenure months, 1)"),
            _log("mean_gap_days", "long_gap_buyer", "short_gap_buyer",
                 "mean days between purchase days; one purchase day: max(days since last order, "
                 "population median of mean gaps)"),
            _id("regularity", "regular_buyer", "irregular_buyer",
                "1 / (1 + std/mean of gaps), population std; 0 with fewer than 2 gaps"),
            _log("orders_last_90d", "recently_active", "recently_quiet",
                 "orders with as_of - 90 days < ordered_at <= as_of"),
            _log("days_since_last_order", "lapsed_buyer", "recent_buyer",
                 "days from the last order to as_of"),
            _log("total_orders", "repeat_customer", "single_order_customer",
                 "distinct orders"),
        ),
    ),
    Axis(
        "purchase_value",
        "How much the customer spends.",
        (
            _log("lifetime_value", "high_spender", "low_spender",
                 "max(0, sum(sales - discount - refund))"),
            _log("mean_order_value", "big_basket", "small_basket", "mean order value"),
            _log("median_order_value", "high_typical_order", "low_typical_order",
                 "median order value"),
            _log("max_order_value", "big_peak_order", "modest_peak_order", "largest order value"),
            # The reference's value trend is clustered on loyalty_trajectory.
            _id("value_consistency", "consistent_spender", "variable_spender",
                "1 / (1 + CV of order values); one order (not established): the median over "
                "customers with 2+ orders, so a one-order customer is typical here rather than "
                "the most erratic spender (0 if nobody has 2 orders). Also the reference's "
                "value_sophistication spend consistency"),
        ),
    ),
    Axis(
        "category_exploration",
        "How widely the customer ranges over categories and products.",
        (
            _log("distinct_categories", "category_explorer", "category_focused",
                 "distinct non-null categories bought"),
            _log("distinct_products", "product_explorer", "narrow_assortment",
                 "distinct products bought"),
            _id("category_entropy", "balanced_across_categories", "one_category_heavy",
                "Shannon entropy of category quantity shares / ln(#categories); 0 for one"),
            _id("product_diversity", "diverse_basket", "repetitive_basket",
                "1 - HHI of product quantity shares"),
            # Primary category share is clustered on product_knowledge, product concentration
            # (1 - product_diversity) only here. The reference's distinct products per line is
            # 1 - product_knowledge__repeat_product_rate whenever an order has one line per
            # product, which is how shops export orders: clustered there only.
        ),
    ),
    Axis(
        "price_sensitivity",
        "How much the customer's buying depends on discounts.",
        (
            _id("discounted_order_share", "deal_hunter", "full_price_buyer",
                "orders with discount > 0 / orders (full-price share is 1 minus this)"),
            _log("mean_discount_per_order", "big_saver", "small_saver",
                 "sum(discount) / orders"),
            _id("discount_depth", "deep_discount_seeker", "shallow_discount_taker",
                "mean over discounted orders of discount / gross, in [0, 1]; 0 if none"),
            _id("discount_share_of_spend", "discount_driven", "price_insensitive",
                "sum(discount) / sum(gross), in [0, 1]"),
            # The recent pair reads the last orders only: a lifetime share moves by 1 / orders
            # with a new order, so a customer who turned deal hunter stayed in the full-price
            # segment for months (drift_quality benchmark).
            _id("recent_discounted_order_share", "recent_deal_taker", "recent_full_price",
                "over the last min(2, orders) orders (by time): orders with discount > 0 / "
                "those orders"),
            _id("recent_discount_share_of_spend", "recently_discount_driven",
                "recently_price_insensitive",
                "over the last min(2, orders) orders (by time): sum(discount) / sum(gross), "
                "in [0, 1]; 0 if their gross is 0"),
        ),
    ),
    Axis(
        "purchase_cadence",
        "When in the week, day and year the customer buys.",
        (
            _id("weekend_share", "weekend_shopper", "weekday_shopper",
                "orders on Saturday or Sunday / orders"),
            _id("business_hours_share", "business_hours_shopper", "off_hours_shopper",
                "orders at 09:00-16:59 / orders with a time of day; 0 if none"),
            _id("evening_share", "evening_shopper", "daytime_shopper",
                "orders at 17:00-22:59 / orders with a time of day; 0 if none"),
            _id("night_share", "night_owl", "daylight_shopper",
                "orders at 23:00-05:59 / orders with a time of day; 0 if none"),
            _id("holiday_season_share", "holiday_shopper", "year_round_shopper",
                "orders in November or December / orders"),
        ),
    ),
    Axis(
        "customer_maturity",
        "How long the relationship has run and whether it is speeding up.",
        (
            _log("tenure_months", "established_customer", "new_customer", "tenure days / 30.4375"),
            _id("lifecycle_stage", "mature_customer", "onboarding_customer",
                "0, 1/3, 2/3, 1 for tenure < 3, < 12, < 24, >= 24 months"),
            # Orders per tenure month is purchase_frequency__orders_per_month.
            _id("acceleration", "accelerating", "decelerating",
                "(r - h) / (r + h), r = sum over orders of exp(-days from the order to as_of / "
                "90) / 90 (decayed recent orders per day), h = distinct orders / tenure days; "
                "0 if tenure <= 90 days or both 0"),
            # No recency signal here: "1 - days since last order / tenure" was dropped, it asks
            # whether engagement has faded (loyalty_trajectory__overdue) and, clustered
            # here, cost the planted tenure bands 0.04-0.10 ARI on generated shops.
        ),
    ),
    Axis(
        "repurchase_behavior",
        "Whether the customer buys the same products again.",
        (
            _id("repurchased_product_share", "replenisher", "one_off_product_buyer",
                "distinct products bought in 2+ distinct orders / distinct products"),
            _log("mean_purchases_per_product", "staple_buyer", "single_purchase_buyer",
                 "mean over products of the distinct orders containing it"),
            _id("top_product_quantity_share", "favorites_focused", "evenly_spread",
                "quantity share of the top ceil(20%) of the customer's products by quantity"),
        ),
    ),
    Axis(
        "return_behavior",
        "How much of what the customer buys comes back.",
        (
            _id("refund_rate", "heavy_returner", "keeper",
                "sum(refund) / sum(gross), in [0, 1] (1 if refunds without sales)"),
            _id("refunded_line_share", "item_returner", "item_keeper",
                "lines with refund > 0 / lines"),
            _id("refunded_order_share", "frequent_returner", "rare_returner",
                "orders with refund > 0 / orders"),
            _log("total_refund", "big_refunds", "small_refunds", "sum(refund)"),
            _id("has_returned", "has_returned", "never_returned", "1 if any refund > 0 else 0"),
            # Recent as on price_sensitivity: a customer who starts returning shows it at once.
            _id("recent_refund_rate", "recent_returner", "recent_keeper",
                "over the last min(2, orders) orders (by time): sum(refund) / sum(gross), in "
                "[0, 1] (1 if refunds without sales)"),
            _id("recent_refunded_order_share", "recently_returning", "recently_keeping",
                "over the last min(2, orders) orders (by time): orders with refund > 0 / "
                "those orders"),
        ),
    ),
    # Always the orders' sales channels, also in shops with tickets (source "orders"). Tickets
    # reach ~35% of a shop's customers at best, so a ticket-based vector is all zeros for the
    # rest; and even on the ticket filers of generated 2,000-3,000 customer shops the ticket
    # channels agreed with the planted channel personas at ARI 0.00, the order channels at 0.40
    # (0.37-0.41 on all customers). Counting orders and tickets together as contacts scored
    # 0.10-0.14 (-0.03 on ticket filers): the two channel vocabularies differ (web, pos, app vs
    # email, chat, phone), so every web buyer who once emailed looked omnichannel. A shop
    # whose orders carry no channel gets the axis not applicable.
    Axis(
        "communication_preference",
        "Through which channels the customer buys: online, in store, with staff or a mix.",
        (
            _id("primary_channel_share", "channel_loyal", "channel_mixer",
                "orders through the most used sales channel / orders with a channel; 0 if none"),
            _log("channel_count", "omnichannel", "monochannel",
                 "distinct sales channels among the orders"),
            _id("channel_switch_rate", "channel_switcher", "channel_steady",
                "consecutive orders (in time) on a different channel / (orders - 1); "
                "0 with fewer than 2"),
            _id("live_channel_share", "live_contact", "self_service",
                "pos, draft_order or phone orders (placed with staff) / orders with a channel"),
        ),
    ),
    Axis(
        "problem_complexity_profile",
        "How often and how hard the customer's purchases turn into problems.",
        (
            _id("issue_rate", "trouble_prone", "trouble_free",
                "tickets: min(1, tickets / orders); orders: orders with refund > 0 / orders"),
            _log("case_effort", "complex_cases", "simple_cases",
                 "tickets: mean message_count per ticket; orders: mean distinct products "
                 "per order"),
            _id("escalated_share", "escalation_prone", "quickly_settled",
                "tickets: tickets with message_count >= 5 or resolution_hours >= 48 / tickets; "
                "orders: sum(refund) / sum(gross) in [0, 1]"),
            _log("issue_breadth", "many_issue_types", "single_issue_type",
                 "tickets: distinct topics; orders: distinct categories bought"),
            _id("money_issue_share", "money_issue_prone", "money_issue_free",
                "tickets: tickets whose topic names billing, payment, price, discount, coupon, "
                "refund or charge / tickets; orders: sum(discount) / sum(gross) in [0, 1]"),
        ),
    ),
    Axis(
        "loyalty_trajectory",
        "Whether the relationship is growing, steady or fading.",
        (
            _id("order_trend", "growing_loyalty", "fading_loyalty",
                "OLS slope of order counts per tenure month (0 months included) / mean monthly "
                "count = (mean month index - (M-1)/2) * 12 / (M^2 - 1), M tenure months; "
                "0 with one order or M = 1"),
            _id("value_trend", "spend_rising", "spend_falling",
                "OLS slope of order value over order index / mean order value, clipped to "
                "[-1, 1]; 0 with fewer than 3 orders (the reference's purchase_value trend)"),
            _id("recency_momentum", "gaining_momentum", "losing_momentum",
                "(a - b) / (a + b), a orders in the last 90 days, b in the 90 before; 0 if both "
                "0. The reference's flags are > 0.2 (a > 1.5b) and < -1/3 (a < 0.5b)"),
            _id("active_month_share", "steady_loyalist", "sporadic_buyer",
                "tenure months with an order / M tenure months"),
            # Replaces churn_risk (1 - exp(-silence / (2 x expected gap)), still the
            # churn_risk_score metric): it rose a little each week, so a lapsing customer's
            # segment crept and drift flagged churners after the 90-day rule, if at all. The
            # flag moves in one week, at two of the customer's own gaps.
            _id("overdue", "overdue", "on_schedule",
                "1 if days since last order >= 2 x mean gap (clipped to [1, 3650] days) else "
                "0; 0 with one purchase day (no own cadence)"),
        ),
    ),
    Axis(
        "product_knowledge",
        "Whether the customer knows what they want.",
        (
            # Product concentration (HHI) is 1 - category_exploration__product_diversity.
            _id("repeat_product_rate", "knows_what_they_want", "still_exploring",
                "(sum over products of orders containing it - distinct products) / that sum"),
            _log("deep_categories", "category_expert", "category_novice",
                 "categories bought in 3+ distinct orders"),
            _id("primary_category_share", "single_category_expert", "broad_browser",
                "quantity share of the customer's largest category; 0 without categories"),
        ),
    ),
    Axis(
        "value_sophistication",
        "What price level the customer buys at and how they treat price.",
        (
            _log("mean_item_price", "premium_buyer", "budget_buyer",
                 "sum(gross) / sum(quantity) over lines with quantity > 0 and gross > 0"),
            _id("item_price_cv", "price_range_mixer", "price_point_loyal",
                "CV of unit prices (gross / quantity) over those lines; 0 with fewer than 2"),
            _id("discount_hunting", "discount_hunter", "full_price_payer",
                "lines with discount > 0 / lines"),
            _id("full_price_comfort", "premium_at_full_price", "value_seeker",
                "gross of undiscounted lines whose unit price exceeds the shop's 75th "
                "percentile unit price (premium_unit_price) / gross"),
            # Spend consistency is purchase_value__value_consistency.
            _id("splurge_share", "splurger", "steady_spender",
                "orders with value > 2 x own mean order value / orders; 0 with one order"),
        ),
    ),
    Axis(
        "support_history",
        "How much and how well the customer has been served by support.",
        (
            _log("tickets_per_month", "frequent_contacter", "rare_contacter",
                 "tickets / max(tenure months, 1)"),
            # Messages per ticket and the complex-ticket share are clustered on
            # problem_complexity_profile (case_effort, escalated_share).
            _log("mean_resolution_hours", "slow_resolution", "fast_resolution",
                 "mean non-null resolution_hours over tickets; 0 if none"),
            _id("low_satisfaction_share", "dissatisfied", "satisfied",
                "rated tickets with satisfaction <= 2 / rated tickets; 0 if none rated"),
            _id("live_channel_share", "phone_or_chat_contact", "async_contact",
                "phone or chat tickets / tickets"),
        ),
    ),
)

_BY_NAME: dict[str, Axis] = {a.name: a for a in AXES}

METRIC_COLUMNS: tuple[str, ...] = (
    "lifetime_value",
    "total_orders",
    "avg_order_value",
    "days_since_last_purchase",
    "customer_tenure_days",
    "churn_risk_score",
)


def axis(name: str) -> Axis:
    """The axis called ``name``; KeyError naming the known axes otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown axis {name!r}; known: {', '.join(_BY_NAME)}") from None


def axis_columns() -> list[str]:
    """Every axis feature column, in AXES order."""
    return [c for a in AXES for c in a.columns()]
