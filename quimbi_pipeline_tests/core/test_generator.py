"""Tests for the synthetic shop generator: file format, reproducibility and planted structure."""

import hashlib
import json
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from quimbi_pipeline.core.generator import GenerateReport, generate_shop
from quimbi_pipeline.core.generator_personas import (
    AXES,
    DRAWN_MIX,
    VOCABULARY,
    draw_population,
)
from quimbi_pipeline.core.schema import SHOPIFY_COLUMNS, TICKET_COLUMNS

CUSTOMERS = 2_000
START = date(2023, 1, 1)

ORDER_SCHEMA = {
    "OrderID": pl.Int64,
    "Customer_ID": pl.String,
    "Date": pl.String,
    "Sku": pl.String,
    "ProductId": pl.Int64,
    "Title": pl.String,
    "ProductType": pl.String,
    "Category": pl.String,
    "QTY": pl.Int64,
    "Sales": pl.Float64,
    "TotalDiscount": pl.Float64,
    "Refunds": pl.Float64,
    "Source": pl.String,
}
TICKET_SCHEMA = {
    "ticket_id": pl.Int64,
    "customer_id": pl.String,
    "created_at": pl.String,
    "channel": pl.String,
    "topic": pl.String,
    "message_count": pl.Int64,
    "resolution_hours": pl.Float64,
    "satisfaction": pl.Int64,
}


@dataclass(frozen=True)
class Shop:
    report: GenerateReport
    orders: pl.DataFrame  # every order line, plus the ground truth of its customer
    tickets: pl.DataFrame
    truth: pl.DataFrame
    manifest: dict


def _read_all(paths: list[Path], schema: dict, stamp: str) -> pl.DataFrame:
    frames = [pl.read_csv(p, schema=schema).with_columns(file=pl.lit(p.stem)) for p in paths]
    # strict=True: a timestamp that is not exactly YYYY-MM-DD HH:MM:SS fails the test.
    return pl.concat(frames).with_columns(
        pl.col(stamp).str.strptime(pl.Datetime("us"), "%Y-%m-%d %H:%M:%S", strict=True)
    )


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Shop:
    out = tmp_path_factory.mktemp("shop")
    report = generate_shop(CUSTOMERS, out, seed=11, start=START, months=36)
    truth = pl.read_parquet(report.truth_path)
    orders = _read_all(report.order_files, ORDER_SCHEMA, "Date").join(
        truth.rename({"customer_id": "Customer_ID"}), on="Customer_ID", how="left"
    )
    tickets = _read_all(report.ticket_files, TICKET_SCHEMA, "created_at")
    manifest = json.loads((out / "ground_truth" / "manifest.json").read_text())
    return Shop(report, orders, tickets, truth, manifest)


def _per_customer(shop: Shop, **aggs: pl.Expr) -> pl.DataFrame:
    keys = ["Customer_ID", *(f"persona__{axis}" for axis in AXES), "change_date", "churn_date"]
    return shop.orders.group_by(keys).agg(**aggs)


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# --- files and formats -------------------------------------------------------------------


def test_one_file_per_month_and_report_counts(shop: Shop) -> None:
    expected = [f"{y}_{m:02d}" for y in (2023, 2024, 2025) for m in range(1, 13)]
    assert [p.stem for p in shop.report.order_files] == [f"orders_{k}" for k in expected]
    assert [p.stem for p in shop.report.ticket_files] == [f"tickets_{k}" for k in expected]
    assert shop.report.end == date(2025, 12, 31)
    assert shop.report.order_lines == shop.orders.height
    assert shop.report.orders == shop.orders["OrderID"].n_unique()
    assert shop.report.tickets == shop.tickets.height
    assert shop.report.customers == shop.truth.height == CUSTOMERS


def test_headers_are_exact(shop: Shop) -> None:
    for path in shop.report.order_files:
        assert path.open().readline().rstrip("\n") == ",".join(SHOPIFY_COLUMNS)
    for path in shop.report.ticket_files:
        assert path.open().readline().rstrip("\n") == ",".join(TICKET_COLUMNS)


def test_order_values_parse_and_are_valid(shop: Shop) -> None:
    o = shop.orders
    assert o.select(pl.col(c).null_count() for c in SHOPIFY_COLUMNS).sum_horizontal().item() == 0
    assert o["QTY"].min() >= 1
    assert o["Sales"].min() > 0
    assert o["TotalDiscount"].min() >= 0 and o["Refunds"].min() >= 0
    assert (o["Refunds"] <= o["Sales"] - o["TotalDiscount"] + 0.005).all()
    assert set(o["Source"].unique()) <= {"web", "pos", "draft_order", "mobile_app"}
    assert o["Customer_ID"].str.contains(r"^\d{10}$").all()
    # An order belongs to one customer at one moment; lines land in the file of their month.
    assert o.group_by("OrderID").agg(pl.col("Customer_ID", "Date").n_unique()).select(
        pl.col("Customer_ID", "Date").max()
    ).row(0) == (1, 1)
    assert (o["Date"].dt.strftime("orders_%Y_%m") == o["file"]).all()
    # A product appears once per order (quantities merged), so no line duplicates another.
    assert not o.select("OrderID", "ProductId").is_duplicated().any()
    # Titles with commas and inch marks came back whole, so the CSV quoting is right.
    assert o["Title"].str.contains(",").any() and o["Title"].str.contains('"').any()
    assert o["Category"].n_unique() == 12


def test_ticket_values_parse_and_are_valid(shop: Shop) -> None:
    t = shop.tickets
    assert t["ticket_id"].is_unique().all()
    assert set(t["channel"].unique()) <= {"email", "chat", "phone", "social"}
    assert t["message_count"].min() >= 1 and t["resolution_hours"].min() > 0
    rated = t["satisfaction"].drop_nulls()
    assert rated.min() >= 1 and rated.max() <= 5
    assert 0 < t["satisfaction"].null_count() < t.height
    assert (t["created_at"].dt.strftime("tickets_%Y_%m") == t["file"]).all()


def test_ground_truth_has_one_row_and_a_label_per_axis(shop: Shop) -> None:
    truth = shop.truth
    assert truth["customer_id"].is_unique().all()
    assert truth.schema["first_order_date"] == pl.Date
    assert truth.schema["change_date"] == pl.Date and truth.schema["churn_date"] == pl.Date
    assert truth.schema["changed_axes"] == pl.List(pl.String)
    assert truth.schema["has_tickets"] == pl.Boolean
    buyers = truth.filter(pl.col("first_order_date").is_not_null())
    for axis in AXES:
        column = f"persona__{axis}"
        assert truth.schema[column] == pl.String
        assert set(truth[column].drop_nulls().unique()) <= set(VOCABULARY[axis])
        assert buyers[column].null_count() == 0
        assert shop.manifest["axes"][axis] == list(VOCABULARY[axis])
    first = shop.orders.group_by("Customer_ID").agg(pl.col("Date").min().dt.date())
    joined = buyers.join(first, left_on="customer_id", right_on="Customer_ID", how="left")
    assert (joined["first_order_date"] == joined["Date"]).all()


def test_persona_mixes_are_uneven_but_not_degenerate() -> None:
    pop = draw_population(np.random.default_rng(3), 20_000, 1096, 0.35)
    for axis in AXES:
        codes = pop.codes[axis][pop.has_orders]
        shares = np.bincount(codes, minlength=len(VOCABULARY[axis])) / codes.size
        assert shares.min() >= 0.07, (axis, shares)
        if axis in DRAWN_MIX:
            assert shares.max() - shares.min() > 0.05, (axis, shares)


# --- reproducibility and arguments ---------------------------------------------------------


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    for name, seed in (("a", 4), ("b", 4), ("c", 5)):
        generate_shop(300, tmp_path / name, seed=seed, months=12)
    a, b, c = (_digests(tmp_path / name) for name in "abc")
    assert a == b
    assert a.keys() == c.keys()
    assert a["drops/orders_2023_06.csv"] != c["drops/orders_2023_06.csv"]
    assert a["ground_truth/customers.parquet"] != c["ground_truth/customers.parquet"]


def test_mid_month_start_and_no_tickets(tmp_path: Path) -> None:
    report = generate_shop(
        300, tmp_path, seed=1, start=date(2023, 1, 31), months=12, ticket_share=0.0
    )
    assert report.end == date(2024, 1, 30)
    assert report.order_files[0].stem == "orders_2023_01"
    assert report.order_files[-1].stem == "orders_2024_01"
    assert report.tickets == 0
    truth = pl.read_parquet(report.truth_path)
    assert not truth["has_tickets"].any()
    assert truth["first_order_date"].min() >= date(2023, 1, 31)


@pytest.mark.parametrize(
    "kwargs", [{"customers": 0}, {"months": 6}, {"ticket_share": 1.5}, {"ticket_share": -0.1}]
)
def test_rejects_bad_arguments(tmp_path: Path, kwargs: dict) -> None:
    args = {"customers": 10, "out_dir": tmp_path} | kwargs
    with pytest.raises(ValueError):
        generate_shop(**args)


# --- planted structure ---------------------------------------------------------------------


def _by(frame: pl.DataFrame, axis: str, value: str) -> dict[str, float]:
    grouped = frame.group_by(f"persona__{axis}").agg(pl.col(value).mean())
    return dict(grouped.iter_rows())


def test_price_return_channel_and_category_personas_show(shop: Shop) -> None:
    steady = shop.orders.filter(pl.col("change_date").is_null())
    line = steady.with_columns(
        discounted=pl.col("TotalDiscount") > 0,
        refunded=pl.col("Refunds") > 0,
        pos=pl.col("Source") == "pos",
    )
    discount = _by(line, "price_sensitivity", "discounted")
    assert discount["deal_hunter"] > 0.6 > 0.15 > discount["full_price_buyer"]
    refund = _by(line, "return_behavior", "refunded")
    assert refund["high_returner"] > 0.25 > 0.08 > refund["keeper"]
    pos = _by(line, "communication_preference", "pos")
    assert pos["store_shopper"] > 0.7 and pos["web_only"] == 0
    assert 0.1 < pos["multichannel"] < 0.5
    per = _per_customer(shop, categories=pl.col("Category").n_unique(), lines=pl.len())
    many = per.filter(pl.col("lines") >= 5)
    assert (
        many.filter(pl.col("persona__category_exploration") == "specialist")["categories"].max()
        == 1
    )
    assert _by(many, "category_exploration", "categories")["explorer"] > 3


def test_frequency_value_and_repurchase_personas_show(shop: Shop) -> None:
    per = _per_customer(
        shop,
        orders=pl.col("OrderID").n_unique(),
        aov=pl.col("Sales").sum() / pl.col("OrderID").n_unique(),
        repeat=1 - pl.col("ProductId").n_unique() / pl.len(),
        lines=pl.len(),
    )
    orders = dict(
        per.group_by("persona__purchase_frequency").agg(pl.col("orders").median()).iter_rows()
    )
    assert orders["weekly_shopper"] > 2 * orders["monthly_regular"]
    assert orders["monthly_regular"] > 2 * orders["occasional"]
    assert per.filter(pl.col("persona__purchase_frequency") == "one_time")["orders"].max() == 1
    aov = dict(per.group_by("persona__purchase_value").agg(pl.col("aov").median()).iter_rows())
    assert aov["premium"] > 2 * aov["mid_spender"] > 4 * aov["budget"]
    repeat = _by(per.filter(pl.col("lines") >= 8), "repurchase_behavior", "repeat")
    assert repeat["repeat_buyer"] > repeat["variety_seeker"] + 0.3


def test_cadence_personas_show(shop: Shop) -> None:
    hour, weekday = pl.col("Date").dt.hour(), pl.col("Date").dt.weekday()
    line = shop.orders.with_columns(
        weekend=(weekday >= 6) & hour.is_between(10, 17),
        business=(weekday <= 5) & hour.is_between(9, 16),
        evening=(hour >= 19) | (hour <= 1),
    )
    expected = {
        "weekend_daytime": "weekend",
        "weekday_business_hours": "business",
        "evening_owl": "evening",
    }
    for persona, column in expected.items():
        share = _by(line, "purchase_cadence", column)
        assert share[persona] > 0.8
        assert max(v for k, v in share.items() if k != persona) < 0.35


def test_maturity_follows_first_order_date(shop: Shop) -> None:
    third = (shop.report.end - START).days / 3 + 1
    cut = pl.col("first_order_date")
    labelled = shop.truth.with_columns(
        expected=pl.when(cut < START + timedelta(days=third))
        .then(pl.lit("veteran"))
        .when(cut < START + timedelta(days=2 * third))
        .then(pl.lit("established"))
        .otherwise(pl.lit("new"))
    ).filter(cut.is_not_null())
    agree = (labelled["expected"] == labelled["persona__customer_maturity"]).mean()
    assert agree > 0.99
    # A cohort was already there on day one.
    assert (shop.truth["first_order_date"] < START + timedelta(days=30)).mean() > 0.1


def test_churners_stop_ordering_at_churn_date(shop: Shop) -> None:
    truth, end = shop.truth, shop.report.end
    churners = truth.filter(pl.col("churn_date").is_not_null())
    assert 0.06 < churners.height / truth.height < 0.14
    half = START + (end - START) / 2
    assert churners["churn_date"].min() >= half
    gap = (churners["churn_date"] - churners["first_order_date"]).dt.total_days()
    assert gap.min() >= 176
    after = shop.orders.filter(pl.col("Date").dt.date() > pl.col("churn_date"))
    assert after.height == 0
    assert (churners["persona__loyalty_trajectory"] == "declining").all()


def _before_after(shop: Shop, changed_axis: str) -> pl.DataFrame:
    return shop.orders.filter(pl.col("changed_axes").list.contains(changed_axis)).with_columns(
        after=pl.col("Date").dt.date() > pl.col("change_date")
    )


def test_changers_behave_differently_after_change_date(shop: Shop) -> None:
    truth = shop.truth
    changers = truth.filter(pl.col("change_date").is_not_null())
    assert 0.10 < changers.height / truth.height < 0.20
    assert (changers["changed_axes"].list.len() > 0).all()
    assert (truth.filter(pl.col("change_date").is_null())["changed_axes"].list.len() == 0).all()
    assert changers["change_date"].min() >= START + (shop.report.end - START) / 2

    deals = (
        _before_after(shop, "price_sensitivity")
        .group_by("after")
        .agg((pl.col("TotalDiscount") > 0).mean())
    )
    share = dict(deals.iter_rows())
    assert share[False] < 0.15 and share[True] > 0.6
    returns = (
        _before_after(shop, "return_behavior").group_by("after").agg((pl.col("Refunds") > 0).mean())
    )
    share = dict(returns.iter_rows())
    assert share[False] < 0.08 and share[True] > 0.25


def test_frequency_drop_and_growth_show_in_order_rates(shop: Shop) -> None:
    end = shop.report.end
    drop = _before_after(shop, "purchase_frequency")
    people = drop.select("Customer_ID", "first_order_date", "change_date").unique()
    days_before = (people["change_date"] - people["first_order_date"]).dt.total_days().sum()
    days_after = (end - people["change_date"]).dt.total_days().sum()
    counts = dict(drop.group_by("after").agg(pl.col("OrderID").n_unique()).iter_rows())
    assert (counts.get(True, 0) / days_after) < 0.3 * (counts[False] / days_before)

    # Growers order more in the second half of their tenure; steady customers about as much.
    midpoint = pl.col("first_order_date") + (pl.lit(end) - pl.col("first_order_date")) / 2
    late = shop.orders.filter(pl.col("persona__purchase_frequency") != "one_time").with_columns(
        late=pl.col("Date").dt.date() > midpoint
    )
    ratio = {}
    for trajectory in ("growing", "steady"):
        sub = late.filter(pl.col("persona__loyalty_trajectory") == trajectory)
        sub = sub.filter(pl.col("first_order_date") < end - timedelta(days=183))
        n_late = sub.filter("late")["OrderID"].n_unique()
        ratio[trajectory] = n_late / (sub["OrderID"].n_unique() - n_late)
    assert ratio["growing"] > 1.5 and 0.6 < ratio["steady"] < 1.4


def test_support_personas_show_in_tickets(shop: Shop) -> None:
    truth, t = shop.truth, shop.tickets
    with_tickets = set(t["customer_id"].unique())
    assert with_tickets == set(truth.filter("has_tickets")["customer_id"])
    assert 0.28 < truth["has_tickets"].mean() < 0.42
    support_only = truth.filter(pl.col("first_order_date").is_null())
    assert support_only.height > 0 and support_only["has_tickets"].all()
    assert not set(support_only["customer_id"]) & set(shop.orders["Customer_ID"])

    joined = t.join(truth, left_on="customer_id", right_on="customer_id")
    stats = dict(
        (row[0], row[1:])
        for row in joined.group_by("persona__problem_complexity_profile")
        .agg(
            pl.col("message_count").mean(),
            pl.col("resolution_hours").median(),
            pl.col("satisfaction").mean(),
        )
        .iter_rows()
    )
    assert stats["simple"][0] <= 2 < 4 <= stats["complex"][0]
    assert stats["complex"][1] > 5 * stats["simple"][1]
    assert stats["complex"][2] < 2.5 < 4 < stats["simple"][2]
    per = joined.group_by("customer_id", "persona__support_history").len()
    volume = dict(per.group_by("persona__support_history").agg(pl.col("len").max()).iter_rows())
    assert volume["light_contact"] <= 2 < volume["heavy_contact"]
    assert "no_contact" not in volume
