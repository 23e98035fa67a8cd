import math
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from quimbi_pipeline.core.axes import AXES, METRIC_COLUMNS, axis, axis_columns
from quimbi_pipeline.core.features import compute_customer_features
from quimbi_pipeline.core.schema import ORDER_LINE_SCHEMA, TICKET_SCHEMA
from quimbi_pipeline_tests.datasets import cdnow_master

BASE = datetime(2024, 1, 1)  # a Monday
DEFAULTS = {
    "has_time_of_day": False,
    "product_id": "p1",
    "category": "cat_x",
    "quantity": 1.0,
    "sales": 10.0,
    "discount": 0.0,
    "refund": 0.0,
    "channel": "web",
}
CDNOW_ABSENT = {
    "category_exploration",
    "price_sensitivity",
    "repurchase_behavior",
    "return_behavior",
    "communication_preference",
    "problem_complexity_profile",
    "product_knowledge",
    "support_history",
}


def line(customer: str, order: str | None, day: float, hour: int = 0, **fields) -> dict:
    record = dict.fromkeys(ORDER_LINE_SCHEMA) | DEFAULTS | fields
    record |= {
        "customer_id": customer,
        "order_id": order,
        "ordered_at": BASE + timedelta(days=day, hours=hour),
    }
    return record


def frame(records: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(records, schema=ORDER_LINE_SCHEMA)


def ticket(customer: str, day: float, **fields) -> dict:
    record = dict.fromkeys(TICKET_SCHEMA) | fields
    record |= {"customer_id": customer, "created_at": BASE + timedelta(days=day)}
    return record


def row(result, customer: str) -> dict:
    rows = result.frame.filter(pl.col("customer_id") == customer)
    assert rows.height == 1
    return rows.row(0, named=True)


def not_applicable(result) -> set[str]:
    return {name for name, a in result.applicability.items() if not a.applicable}


def assert_all_finite(result) -> None:
    values = result.frame.drop("customer_id").to_numpy()
    assert result.frame.null_count().sum_horizontal().item() == 0
    assert np.isfinite(values).all()


def random_shop(seed: int, customers: int = 60) -> pl.DataFrame:
    """Lines with the awkward cases: null ids and quantities, zero sales, refunds over sales."""
    rng = np.random.default_rng(seed)
    records = []
    for c in range(customers):
        for o in range(int(rng.integers(1, 5))):
            day = float(rng.integers(0, 400))
            order = None if rng.random() < 0.05 else f"o{c}_{o}"
            for _ in range(int(rng.integers(1, 4))):
                # Zero sales, and cents that binary floats cannot hold exactly (so summation
                # order shows up in the last bits).
                sales = float(rng.choice([0.0, round(rng.uniform(0.1, 90.0), 2)]))
                records.append(
                    line(
                        f"c{c:03d}",
                        order,
                        day,
                        hour=int(rng.integers(0, 24)),
                        has_time_of_day=True,
                        product_id=None if rng.random() < 0.1 else f"p{rng.integers(0, 8)}",
                        sku=f"s{rng.integers(0, 8)}",
                        category=f"k{rng.integers(0, 3)}",
                        quantity=None if rng.random() < 0.1 else float(rng.integers(0, 3)),
                        sales=sales,
                        discount=float(rng.choice([0.0, 0.0, 0.3])),
                        refund=float(rng.choice([0.0, 0.0, 0.0, 100.0])),
                        channel=str(rng.choice(["web", "pos", "mobile_app"])),
                    )
                )
    return frame(records)


def test_gap_frequency_signals_by_hand():
    lines = [line("a", f"a{i}", d) for i, d in enumerate((0, 10, 30))]
    lines += [line("b", "b0", 0), line("b", "b1", 18)]
    result = compute_customer_features(frame(lines))
    a = row(result, "a")
    assert a["purchase_frequency__mean_gap_days"] == pytest.approx(15.0)
    # gaps 10 and 20: std 5 / mean 15
    assert a["purchase_frequency__regularity"] == pytest.approx(1 / (1 + 5 / 15))
    assert a["purchase_frequency__total_orders"] == 3.0
    assert a["total_orders"] == 3.0
    assert a["days_since_last_purchase"] == 0.0
    assert a["customer_tenure_days"] == 30.0
    # under a month of tenure counts as one month
    assert a["purchase_frequency__orders_per_month"] == pytest.approx(3.0)
    assert a["purchase_frequency__orders_last_90d"] == 3.0
    b = row(result, "b")
    assert b["purchase_frequency__mean_gap_days"] == pytest.approx(18.0)
    # one gap: spread not established
    assert b["purchase_frequency__regularity"] == 0.0
    assert b["days_since_last_purchase"] == pytest.approx(12.0)


def test_value_price_and_return_signals_by_hand():
    lines = [
        line("v", "o1", 0, sales=10.0),
        line("v", "o2", 1, sales=20.0),
        line("v", "o3", 2, sales=35.0, discount=5.0, refund=4.0),
        line("w", "o4", 2, sales=99.0),
    ]
    v = row(compute_customer_features(frame(lines)), "v")
    assert v["lifetime_value"] == pytest.approx(65 - 5 - 4)
    assert v["avg_order_value"] == pytest.approx(56 / 3)
    assert v["purchase_value__mean_order_value"] == pytest.approx(20.0)
    assert v["purchase_value__median_order_value"] == pytest.approx(20.0)
    assert v["purchase_value__max_order_value"] == pytest.approx(30.0)
    # order values 10, 20, 30: slope 10 per order over a mean of 20
    assert v["loyalty_trajectory__value_trend"] == pytest.approx(0.5)
    consistency = 1 / (1 + math.sqrt(200 / 3) / 20)
    assert v["purchase_value__value_consistency"] == pytest.approx(consistency)
    # w has one order: the typical (median) consistency of the customers with two or more
    w = row(compute_customer_features(frame(lines)), "w")
    assert w["purchase_value__value_consistency"] == pytest.approx(consistency)
    assert v["price_sensitivity__discounted_order_share"] == pytest.approx(1 / 3)
    assert v["price_sensitivity__mean_discount_per_order"] == pytest.approx(5 / 3)
    assert v["price_sensitivity__discount_depth"] == pytest.approx(5 / 35)
    assert v["price_sensitivity__discount_share_of_spend"] == pytest.approx(5 / 65)
    assert v["return_behavior__refund_rate"] == pytest.approx(4 / 65)
    assert v["return_behavior__refunded_order_share"] == pytest.approx(1 / 3)
    assert v["return_behavior__total_refund"] == pytest.approx(4.0)
    assert v["return_behavior__has_returned"] == 1.0
    # the recent signals read the last 2 orders only (o2, o3)
    assert v["price_sensitivity__recent_discounted_order_share"] == pytest.approx(1 / 2)
    assert v["price_sensitivity__recent_discount_share_of_spend"] == pytest.approx(5 / 55)
    assert v["return_behavior__recent_refund_rate"] == pytest.approx(4 / 55)
    assert v["return_behavior__recent_refunded_order_share"] == pytest.approx(1 / 2)
    assert w["price_sensitivity__recent_discounted_order_share"] == 0.0


def test_product_and_category_signals_by_hand():
    lines = [
        line("p", "o1", 0, product_id="p1", quantity=2.0, category="x"),
        line("p", "o1", 0, product_id="p2", quantity=1.0, category="y"),
        line("p", "o2", 10, product_id="p1", quantity=1.0, category="x"),
        line("p", "o3", 20, product_id="p1", quantity=1.0, category="x"),
        line("p", "o3", 20, product_id="p3", quantity=1.0, category="z"),
        line("q", "o4", 20, product_id="p9", category="y"),
    ]
    p = row(compute_customer_features(frame(lines)), "p")
    # product quantities 4, 1, 1: HHI 18 / 36
    assert p["category_exploration__product_diversity"] == pytest.approx(0.5)
    assert p["repurchase_behavior__top_product_quantity_share"] == pytest.approx(4 / 6)
    assert p["repurchase_behavior__repurchased_product_share"] == pytest.approx(1 / 3)
    assert p["repurchase_behavior__mean_purchases_per_product"] == pytest.approx(5 / 3)
    assert p["product_knowledge__repeat_product_rate"] == pytest.approx(2 / 5)
    assert p["category_exploration__distinct_products"] == 3.0
    assert p["category_exploration__distinct_categories"] == 3.0
    shares = [4 / 6, 1 / 6, 1 / 6]
    entropy = -sum(s * math.log(s) for s in shares) / math.log(3)
    assert p["category_exploration__category_entropy"] == pytest.approx(entropy)
    assert p["product_knowledge__primary_category_share"] == pytest.approx(4 / 6)
    assert p["product_knowledge__deep_categories"] == 1.0
    # orders proxy: distinct products per order (2, 1, 2)
    assert p["problem_complexity_profile__case_effort"] == pytest.approx(5 / 3)


def test_cadence_shares_by_hand():
    timed = {"has_time_of_day": True}
    lines = [
        line("t", "o1", 5, hour=10, **timed),  # Saturday, business hours
        line("t", "o2", 7, hour=20, **timed),  # Monday evening
        line("t", "o3", 8, hour=2, **timed),  # Tuesday night
        line("t", "o3b", 9, hour=23, **timed),  # Wednesday night
        line("t", "o4", 335, hour=12, **timed),  # Sunday 1 December, business hours
        line("u", "o5", 9, hour=12, **timed),
    ]
    t = row(compute_customer_features(frame(lines)), "t")
    assert t["purchase_cadence__weekend_share"] == pytest.approx(2 / 5)
    assert t["purchase_cadence__business_hours_share"] == pytest.approx(2 / 5)
    assert t["purchase_cadence__evening_share"] == pytest.approx(1 / 5)
    assert t["purchase_cadence__night_share"] == pytest.approx(2 / 5)
    assert t["purchase_cadence__holiday_season_share"] == pytest.approx(1 / 5)


def test_trajectory_signals_by_hand():
    lines = [line("l", f"o{d}", d) for d in (0, 100, 190, 200)] + [line("m", "m0", 50)]
    lines += [line("n", f"n{d}", d) for d in (150, 160, 170)]
    result = compute_customer_features(frame(lines))
    loyal = row(result, "l")
    # 2 orders in the last 90 days, 1 in the 90 before
    assert loyal["loyalty_trajectory__recency_momentum"] == pytest.approx(1 / 3)
    # 7 tenure months, order months 0, 3, 6, 6
    assert loyal["loyalty_trajectory__order_trend"] == pytest.approx((3.75 - 3) * 12 / 48)
    assert loyal["loyalty_trajectory__active_month_share"] == pytest.approx(3 / 7)
    # decayed recent orders per day against 4 orders in 200 days
    recent = sum(math.exp(-(200 - d) / 90) for d in (0, 100, 190, 200)) / 90
    assert loyal["customer_maturity__acceleration"] == pytest.approx(
        (recent - 4 / 200) / (recent + 4 / 200)
    )
    assert loyal["loyalty_trajectory__overdue"] == 0.0
    # 30 silent days on a 10-day cadence: overdue; one purchase day: no cadence, never overdue
    assert row(result, "n")["loyalty_trajectory__overdue"] == 1.0
    assert row(result, "m")["loyalty_trajectory__overdue"] == 0.0
    assert loyal["customer_maturity__lifecycle_stage"] == pytest.approx(1 / 3)


def test_one_order_customers_get_documented_defaults():
    lines = [line("a", f"a{i}", d) for i, d in enumerate((0, 10, 30))]
    lines += [line("s", "s0", 20), line("t", "t0", 0)]
    result = compute_customer_features(frame(lines))
    s, t = row(result, "s"), row(result, "t")
    # typical gap = median mean gap of repeat customers = 15 days
    assert s["purchase_frequency__mean_gap_days"] == pytest.approx(15.0)
    assert t["purchase_frequency__mean_gap_days"] == pytest.approx(30.0)
    assert s["churn_risk_score"] == pytest.approx(1 - math.exp(-10 / 30))
    assert s["loyalty_trajectory__overdue"] == 0.0
    for feature in (
        "purchase_frequency__regularity",
        "loyalty_trajectory__value_trend",
        "loyalty_trajectory__order_trend",
        "value_sophistication__splurge_share",
    ):
        assert s[feature] == 0.0, feature
    # not established either, but typical rather than 0: a's consistency (the only repeat buyer)
    assert (
        s["purchase_value__value_consistency"]
        == row(result, "a")["purchase_value__value_consistency"]
    )


def test_orders_all_on_one_day_have_finite_churn():
    lines = [line("z", f"z{i}", 5) for i in range(3)] + [line("y", "y0", 30)]
    result = compute_customer_features(frame(lines))
    z = row(result, "z")
    # no customer has two purchase days: the default typical gap of 90 days applies
    assert z["churn_risk_score"] == pytest.approx(1 - math.exp(-25 / 180))
    assert z["purchase_frequency__regularity"] == 0.0
    assert z["total_orders"] == 3.0
    assert_all_finite(result)


def test_as_of_cuts_lines_and_matches_prefiltered_input():
    lines = [line("a", f"a{i}", d) for i, d in enumerate((0, 10, 30))]
    lines += [line("late", "l0", 40), line("b", "b0", 5), line("b", "b1", 12)]
    shop = frame(lines)
    as_of = BASE + timedelta(days=20)
    result = compute_customer_features(shop, as_of=as_of)
    assert result.as_of == as_of
    assert result.frame.get_column("customer_id").to_list() == ["a", "b"]
    a = row(result, "a")
    assert a["total_orders"] == 2.0
    assert a["days_since_last_purchase"] == pytest.approx(10.0)
    assert a["customer_tenure_days"] == pytest.approx(20.0)
    prefiltered = compute_customer_features(shop.filter(pl.col("ordered_at") <= as_of), as_of=as_of)
    assert result.frame.equals(prefiltered.frame)
    aware = compute_customer_features(shop, as_of=as_of.replace(tzinfo=UTC))
    assert aware.frame.equals(result.frame)


def test_as_of_defaults_to_latest_order_not_the_clock():
    shop = frame([line("a", "a0", 0), line("b", "b0", 40)])
    result = compute_customer_features(shop.lazy())
    assert result.as_of == BASE + timedelta(days=40)
    assert row(result, "a")["days_since_last_purchase"] == pytest.approx(40.0)


def test_as_of_before_every_order_gives_an_empty_frame():
    result = compute_customer_features(frame([line("a", "a0", 10)]), as_of=BASE)
    assert result.frame.height == 0
    assert result.frame.columns == ["customer_id", *METRIC_COLUMNS, *axis_columns()]
    assert not_applicable(result) == {a.name for a in AXES}


def test_same_input_gives_the_same_output_in_any_row_order():
    shop = random_shop(seed=3)
    first = compute_customer_features(shop)
    again = compute_customer_features(shop)
    shuffled = compute_customer_features(shop.sample(fraction=1.0, shuffle=True, seed=9))
    assert first.frame.equals(again.frame)
    assert first.frame.equals(shuffled.frame)
    assert first.applicability == shuffled.applicability


def test_frame_schema_is_finite_float_and_in_bounds():
    result = compute_customer_features(random_shop(seed=11))
    f = result.frame
    assert f.columns == ["customer_id", *METRIC_COLUMNS, *axis_columns()]
    assert f.get_column("customer_id").is_unique().all()
    assert all(dtype == pl.Float64 for dtype in f.drop("customer_id").dtypes)
    assert_all_finite(result)
    churn = f.get_column("churn_risk_score")
    assert churn.min() >= 0.0 and churn.max() <= 1.0
    for ax in AXES:
        for feature, column in zip(ax.features, ax.columns(), strict=True):
            values = f.get_column(column)
            # log1p needs > -1; the features are documented as >= 0
            if feature.transform == "log1p":
                assert values.min() >= 0.0, column
            else:
                assert values.min() >= -2.0 and values.max() <= 2.0, column


def test_customers_with_refunds_over_sales_keep_a_bounded_refund_rate():
    lines = [line("r", "r0", 0, sales=10.0, refund=25.0), line("r", "r1", 1, sales=0.0, refund=3.0)]
    lines.append(line("k", "k0", 1, sales=0.0))
    result = compute_customer_features(frame(lines))
    r = row(result, "r")
    assert r["return_behavior__refund_rate"] == 1.0
    assert r["lifetime_value"] == pytest.approx(10 - 28)
    assert r["purchase_value__lifetime_value"] == 0.0
    assert_all_finite(result)


def test_product_identity_falls_back_to_sku_then_title():
    lines = [
        line("a", "a0", 0, product_id=None, sku="s1"),
        line("a", "a1", 5, product_id=None, sku="s1"),
        line("a", "a1", 5, product_id=None, sku=None, product_title="Mug"),
        line("b", "b0", 5, product_id=None, sku="s2"),
    ]
    a = row(compute_customer_features(frame(lines)), "a")
    assert a["category_exploration__distinct_products"] == 2.0
    assert a["repurchase_behavior__repurchased_product_share"] == pytest.approx(0.5)


def test_lines_without_order_id_form_one_order_per_timestamp():
    lines = [line("a", None, 0), line("a", None, 0), line("a", None, 3), line("b", "b0", 3)]
    a = row(compute_customer_features(frame(lines)), "a")
    assert a["total_orders"] == 2.0


def cdnow_like(with_products: bool) -> pl.DataFrame:
    rng = np.random.default_rng(5)
    records = []
    for c in range(40):
        for o in range(int(rng.integers(1, 6))):
            records.append(
                line(
                    f"c{c}",
                    f"c{c}_{o}",
                    float(rng.integers(0, 500)),
                    product_id=f"p{rng.integers(0, 4)}" if with_products else None,
                    category=None,
                    discount=None,
                    refund=None,
                    channel=None,
                    quantity=float(rng.integers(1, 4)),
                    sales=float(rng.uniform(5, 80)),
                )
            )
    return frame(records)


def test_cdnow_like_shop_marks_exactly_the_absent_axes_not_applicable():
    result = compute_customer_features(cdnow_like(with_products=False))
    assert not_applicable(result) == CDNOW_ABSENT
    assert_all_finite(result)
    reasons = {name: a.reason for name, a in result.applicability.items()}
    assert reasons["category_exploration"] == "no category column in the orders (all null)"
    assert "discount" in reasons["price_sensitivity"]
    assert "refund" in reasons["return_behavior"]
    assert "product" in reasons["repurchase_behavior"]
    assert "channel" in reasons["communication_preference"]
    assert "tickets" in reasons["support_history"]
    assert all(reasons[name] is None for name in {a.name for a in AXES} - CDNOW_ABSENT)
    # dates only: the time-of-day shares are constant, the day-based ones still vary
    constant = result.constant_features["purchase_cadence"]
    assert {"business_hours_share", "evening_share", "night_share"} <= set(constant)
    assert "weekend_share" not in constant


def test_product_ids_make_the_product_axes_applicable_again():
    result = compute_customer_features(cdnow_like(with_products=True))
    assert not_applicable(result) == CDNOW_ABSENT - {"repurchase_behavior", "product_knowledge"}


def test_present_but_constant_inputs_make_an_axis_not_applicable():
    lines = [line(f"c{i}", f"o{i}", i, sales=10.0 + i, discount=0.0) for i in range(5)]
    result = compute_customer_features(frame(lines))
    price = result.applicability["price_sensitivity"]
    assert not price.applicable
    assert price.reason == "every feature has the same value for all 5 customers"
    assert len(result.constant_features["price_sensitivity"]) == len(
        axis("price_sensitivity").features
    )
    assert result.applicability["purchase_value"].applicable


def shop_with_tickets() -> tuple[pl.DataFrame, pl.DataFrame]:
    orders = frame(
        [line("a", f"a{i}", d) for i, d in enumerate((0, 10, 30))]
        + [line("b", "b0", 0, channel="pos"), line("c", "c0", 5)]
    )
    tickets = pl.DataFrame(
        [
            ticket(
                "a",
                2,
                ticket_id="t1",
                channel="phone",
                topic="billing",
                message_count=6.0,
                resolution_hours=10.0,
                satisfaction=1.0,
            ),
            ticket(
                "a",
                12,
                ticket_id="t2",
                channel="email",
                topic="shipping",
                message_count=2.0,
                resolution_hours=50.0,
                satisfaction=5.0,
            ),
            ticket(
                "b",
                1,
                ticket_id="t3",
                channel="chat",
                topic="shipping",
                message_count=1.0,
                resolution_hours=1.0,
            ),
            ticket("ghost", 3, ticket_id="t4", channel="email", topic="account"),
            ticket("c", 40, ticket_id="t5", channel="phone", topic="returns", message_count=9.0),
        ],
        schema=TICKET_SCHEMA,
    )
    return orders, tickets


def test_support_axes_read_tickets_when_the_shop_has_them():
    orders, tickets = shop_with_tickets()
    result = compute_customer_features(orders, tickets)
    assert result.frame.get_column("customer_id").to_list() == ["a", "b", "c"]
    for name in ("problem_complexity_profile", "support_history"):
        assert result.applicability[name].source == "tickets"
        assert result.applicability[name].applicable, name
    # the sales channels of the orders, not the ticket channels (why: core.axes)
    assert result.applicability["communication_preference"].source == "orders"
    a = row(result, "a")
    assert a["support_history__tickets_per_month"] == pytest.approx(2.0)
    assert a["problem_complexity_profile__case_effort"] == pytest.approx(4.0)
    assert a["support_history__mean_resolution_hours"] == pytest.approx(30.0)
    assert a["support_history__low_satisfaction_share"] == pytest.approx(0.5)
    assert a["support_history__live_channel_share"] == pytest.approx(0.5)
    assert a["problem_complexity_profile__escalated_share"] == 1.0
    # a's three orders are all on the web; its tickets went by phone and email
    assert a["communication_preference__channel_switch_rate"] == 0.0
    assert a["communication_preference__channel_count"] == 1.0
    assert a["problem_complexity_profile__issue_rate"] == pytest.approx(2 / 3)
    assert a["problem_complexity_profile__money_issue_share"] == pytest.approx(0.5)
    assert a["problem_complexity_profile__issue_breadth"] == 2.0
    b = row(result, "b")
    assert b["support_history__low_satisfaction_share"] == 0.0  # nothing rated
    assert b["communication_preference__live_channel_share"] == 1.0  # a pos order
    # c's only ticket is after as_of
    c = row(result, "c")
    assert all(c[col] == 0.0 for col in result.frame.columns if col.startswith("support_history"))
    assert_all_finite(result)


@pytest.mark.parametrize("tickets", [None, pl.DataFrame(schema=TICKET_SCHEMA)])
def test_support_axes_fall_back_to_order_proxies_without_tickets(tickets):
    orders, _ = shop_with_tickets()
    result = compute_customer_features(orders, tickets)
    assert result.applicability["problem_complexity_profile"].source == "orders_proxy"
    assert result.applicability["communication_preference"].source == "orders"
    assert result.applicability["communication_preference"].applicable
    assert row(result, "b")["communication_preference__live_channel_share"] == 1.0  # pos
    support = result.applicability["support_history"]
    assert not support.applicable and support.reason == "the shop has no support tickets"


def test_tickets_only_after_as_of_keep_the_ticket_source():
    orders, tickets = shop_with_tickets()
    result = compute_customer_features(orders, tickets, as_of=BASE + timedelta(days=0.5))
    support = result.applicability["support_history"]
    assert support.source == "tickets"
    assert not support.applicable
    assert support.reason == "no support tickets on or before as_of"


def test_real_cdnow_log_is_finite_with_the_absent_axes_marked():
    path = cdnow_master()
    rows = [text.split() for text in path.read_text().splitlines()]
    parts = [p for p in rows if p and p[0].isdigit()]  # the file starts with a header
    raw = pl.DataFrame(
        {
            "customer_id": [p[0] for p in parts],
            "day": [p[1] for p in parts],
            "quantity": [float(p[2]) for p in parts],
            "sales": [max(float(p[3]), 0.0) for p in parts],
        }
    )
    orders = raw.with_row_index("n").select(
        pl.format("{}-{}", "customer_id", "n").alias("order_id"),
        "customer_id",
        pl.col("day").str.to_datetime("%Y%m%d", time_unit="us").alias("ordered_at"),
        pl.lit(False).alias("has_time_of_day"),
        "quantity",
        "sales",
    )
    result = compute_customer_features(orders)
    assert result.frame.height == 23_570
    assert not_applicable(result) == CDNOW_ABSENT
    assert_all_finite(result)
    # the reference's infinite churn: several orders, every one on the same day
    same_day = (
        orders.group_by("customer_id")
        .agg(pl.len().alias("n"), pl.col("ordered_at").n_unique().alias("days"))
        .filter((pl.col("n") > 1) & (pl.col("days") == 1))
        .get_column("customer_id")
    )
    assert same_day.len() > 0
    churn = result.frame.filter(pl.col("customer_id").is_in(same_day.implode())).get_column(
        "churn_risk_score"
    )
    assert churn.is_finite().all() and churn.max() <= 1.0
