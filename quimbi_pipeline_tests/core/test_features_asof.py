"""FeatureTimeline gives compute_customer_features' frame, to the bit, at every date."""

from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quimbi_pipeline.core.features import compute_customer_features
from quimbi_pipeline.core.features_asof import FeatureTimeline
from quimbi_pipeline.core.generator import GenerateReport
from quimbi_pipeline.core.schema import ORDER_LINE_SCHEMA
from quimbi_pipeline.core.snapshots import end_of_day
from quimbi_pipeline_tests.datasets import ingest_to_lake

BASE = datetime(2024, 1, 1, 12)


@pytest.fixture(scope="module")
def shop_lake(
    small_shop: GenerateReport, tmp_path_factory: pytest.TempPathFactory
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The small shop's order lines and tickets, ingested as the lake holds them."""
    root = tmp_path_factory.mktemp("asof_lake")
    files = [*small_shop.order_files, *small_shop.ticket_files]
    lake = ingest_to_lake(files, root / "raw", root / "orders.parquet", root / "tickets.parquet")
    return pl.read_parquet(lake.orders), pl.read_parquet(lake.tickets)


def reference(orders: pl.DataFrame, tickets: pl.DataFrame | None, as_of: datetime):
    return compute_customer_features(orders, tickets, as_of=as_of).frame


def test_every_week_of_a_shop_equals_the_from_scratch_features(
    shop_lake: tuple[pl.DataFrame, pl.DataFrame], small_shop: GenerateReport
) -> None:
    orders, tickets = shop_lake
    timeline = FeatureTimeline(orders, tickets)
    day, compared = small_shop.start - timedelta(days=14), 0
    while day <= small_shop.end + timedelta(days=14):
        as_of = end_of_day(day)
        expected = reference(orders, tickets, as_of)
        assert_frame_equal(timeline.frame_at(as_of), expected, check_exact=True)
        compared += expected.height > 0
        day += timedelta(days=7)
    assert compared >= 50


@pytest.mark.parametrize("steps", [[1, 1, 30, 90], [200, -150, 3, -40]])
def test_irregular_and_backward_steps_stay_exact(
    shop_lake: tuple[pl.DataFrame, pl.DataFrame], small_shop: GenerateReport, steps: list[int]
) -> None:
    orders, tickets = shop_lake
    timeline = FeatureTimeline(orders, tickets)
    day = small_shop.start + timedelta(days=60)
    for step in [0, *steps]:
        day += timedelta(days=step)
        as_of = end_of_day(day)
        assert_frame_equal(
            timeline.frame_at(as_of), reference(orders, tickets, as_of), check_exact=True
        )


def _line(customer: str, order: str, day: float, category: str, quantity: float, **fields):
    record = dict.fromkeys(ORDER_LINE_SCHEMA) | {
        "customer_id": customer,
        "order_id": order,
        "ordered_at": BASE + timedelta(days=day),
        "product_id": f"p-{category}-{quantity}",
        "category": category,
        "quantity": quantity,
        "sales": 10.0 * quantity,
        "discount": 0.0,
        "refund": 0.0,
        "channel": "web",
    }
    return record | fields


def test_a_category_bought_first_by_an_earlier_customer_reorders_the_holders() -> None:
    # "b" holds three categories whose q*ln(q) terms (q = 2, 2, 13) sum to a different last
    # bit in the order x, y, z than z, x, y. In week 2 "a", sorted before "b", buys z: z's
    # first line moves ahead of x and y, so the from-scratch features sum b's categories in
    # the other order although b bought nothing.
    lines = [
        _line("a", "a1", 1, "asof-w", 1.0),
        _line("b", "b1", 1, "asof-x", 2.0),
        _line("b", "b1", 1, "asof-y", 2.0),
        _line("b", "b1", 1, "asof-z", 13.0),
        _line("a", "a2", 10, "asof-z", 1.0),
    ]
    orders = pl.DataFrame(lines, schema=ORDER_LINE_SCHEMA)
    weeks = [end_of_day(BASE.date() + timedelta(days=d)) for d in (5, 12)]
    expected = [reference(orders, None, as_of) for as_of in weeks]
    entropy = "category_exploration__category_entropy"
    b_entropy = [frame.filter(pl.col("customer_id") == "b")[entropy].item() for frame in expected]
    assert b_entropy[0] != b_entropy[1], "the from-scratch features no longer depend on the order"
    timeline = FeatureTimeline(orders, None)
    for as_of, frame in zip(weeks, expected, strict=True):
        assert_frame_equal(timeline.frame_at(as_of), frame, check_exact=True)


def test_orders_whose_lines_straddle_the_cut_stay_exact() -> None:
    # One order whose lines carry two times: a cut between them holds part of the order.
    lines = [
        _line("a", "o1", 1, "c1", 1.0),
        _line("a", "o1", 9, "c2", 3.0, discount=5.0),
        _line("a", "o2", 20, "c1", 2.0),
        _line("b", "o3", 2, "c2", 1.0, refund=4.0),
        _line("b", "o4", 15, "c3", 1.0),
    ]
    orders = pl.DataFrame(lines, schema=ORDER_LINE_SCHEMA)
    timeline = FeatureTimeline(orders, None)
    for day in (3, 10, 16, 25):
        as_of = end_of_day(BASE.date() + timedelta(days=day))
        assert_frame_equal(
            timeline.frame_at(as_of), reference(orders, None, as_of), check_exact=True
        )


def test_dates_before_the_first_order_give_the_empty_frame() -> None:
    orders = pl.DataFrame([_line("a", "o1", 5, "c1", 1.0)], schema=ORDER_LINE_SCHEMA)
    timeline = FeatureTimeline(orders, None)
    as_of = datetime.combine(date(2023, 12, 1), datetime.min.time())
    empty = timeline.frame_at(as_of)
    assert empty.height == 0
    assert empty.schema == reference(orders, None, as_of).schema
    assert timeline.frame_at(end_of_day(date(2024, 1, 10))).height == 1


def test_an_empty_history_gives_empty_frames(tmp_path: Path) -> None:
    orders = pl.DataFrame(schema=ORDER_LINE_SCHEMA)
    frame = FeatureTimeline(orders, None).frame_at(BASE)
    assert frame.height == 0
    assert frame.columns == reference(orders, None, BASE).columns
