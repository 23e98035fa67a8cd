"""Line- and product-level features: exploration, repurchase, returns, knowledge, price level.

Three roll-ups of the prepared lines: the lines per customer (``l_`` columns), the (customer,
product) pairs (``p_``) and the (customer, category) pairs (``k_``). Formulas are documented in
``core.axes``.
"""

import polars as pl
import polars.selectors as cs

from quimbi_pipeline.core.features_common import (
    CUSTOMER_CODE,
    ORDER_CODE,
    position_in_run,
    ratio,
    run_start,
    share,
)

# The share of a customer's products, by quantity rank, counted as "top" products.
TOP_PRODUCT_FRACTION = 0.2
# A category bought in this many distinct orders counts as one the customer knows well.
DEEP_CATEGORY_ORDERS = 3
# A unit price in the shop's top quartile is "premium". The median made the upper half of the
# catalogue premium: on generated shops mid-tier buyers then looked like connoisseurs and
# value_sophistication agreed with its planted personas at ARI 0.12 instead of 0.45-0.48.
PREMIUM_UNIT_PRICE_QUANTILE = 0.75


def _as_float(frame: pl.DataFrame) -> pl.DataFrame:
    # Counts come back unsigned and empty selections as null; both become plain floats.
    return frame.with_columns(cs.numeric().exclude(CUSTOMER_CODE).cast(pl.Float64).fill_null(0.0))


def premium_unit_price(units: pl.Series) -> float:
    """The unit price above which a line is premium: the shop's ``PREMIUM_UNIT_PRICE_QUANTILE``.

    ``units`` are the priced lines' unit prices (nulls ignored); 0 when there are none.
    """
    value = units.quantile(PREMIUM_UNIT_PRICE_QUANTILE, interpolation="linear")
    return float(value) if value is not None else 0.0


def line_aggregates(lines: pl.DataFrame, premium_unit: float) -> pl.DataFrame:
    """Raw per-customer statistics of the lines (``l_`` columns); lines sorted by customer.

    ``premium_unit`` is the shop-wide ``premium_unit_price`` of the same cut of lines.
    """
    unit, sales = pl.col("unit"), pl.col("sales")
    priced = unit.is_not_null()
    premium_full_price = priced & (pl.col("discount") <= 0) & (unit > premium_unit)
    return _as_float(
        lines.group_by(CUSTOMER_CODE).agg(
            l_n=pl.len(),
            l_gross=sales.sum(),
            l_refunded=(pl.col("refund") > 0).sum(),
            l_discounted=(pl.col("discount") > 0).sum(),
            l_priced_gross=pl.when(priced).then(sales).otherwise(0.0).sum(),
            l_priced_qty=pl.when(priced).then(pl.col("qty")).otherwise(0.0).sum(),
            l_unit_n=unit.count(),
            l_unit_mean=unit.mean(),
            l_unit_std=unit.std(ddof=0),
            l_premium_full=pl.when(premium_full_price).then(sales).otherwise(0.0).sum(),
        )
    )


def pair_table(lines: pl.DataFrame, code: str) -> pl.DataFrame:
    """Quantity and distinct orders per (customer, ``code``), null codes left out.

    Sorted by customer. The lines arrive sorted by customer then order; a stable sort on the
    (customer, code) key keeps the orders ascending inside each pair, so a new order is a change
    of order code.
    """
    key = pl.col(CUSTOMER_CODE).cast(pl.UInt64) * (1 << 32) + pl.col(code).cast(pl.UInt64)
    pairs = (
        lines.select(CUSTOMER_CODE, ORDER_CODE, code, "qty")
        .filter(pl.col(code).is_not_null())
        .with_columns(key=key)
        .sort("key", maintain_order=True)
    )
    new_pair = run_start("key")
    return (
        pairs.with_columns(
            pair=new_pair.cum_sum().set_sorted(), new_order=new_pair | run_start(ORDER_CODE)
        )
        .group_by("pair")
        .agg(pl.col(CUSTOMER_CODE).first(), q=pl.col("qty").sum(), orders=pl.col("new_order").sum())
        .sort(CUSTOMER_CODE)
    )


def product_aggregates(lines: pl.DataFrame) -> pl.DataFrame:
    """Raw per-customer statistics of the (customer, product) pairs (``p_`` columns)."""
    q, orders = pl.col("q"), pl.col("orders")
    # Rank of each product inside its customer by quantity; ties share a quantity, so which
    # tied product counts as "top" does not change the top quantity.
    ranked = pair_table(lines, "product").sort(CUSTOMER_CODE, "q", descending=[False, True])
    start = run_start(CUSTOMER_CODE)
    ranked = ranked.with_columns(
        top=position_in_run(start) < (pl.len().over(CUSTOMER_CODE) * TOP_PRODUCT_FRACTION).ceil()
    )
    return _as_float(
        ranked.group_by(CUSTOMER_CODE).agg(
            p_n=pl.len(),
            p_q=q.sum(),
            p_q_squares=(q * q).sum(),
            p_top_q=pl.when(pl.col("top")).then(q).otherwise(0.0).sum(),
            p_repurchased=(orders >= 2).sum(),
            p_orders_sum=orders.sum(),
        )
    )


def category_aggregates(lines: pl.DataFrame) -> pl.DataFrame:
    """Raw per-customer statistics of the (customer, category) pairs (``k_`` columns)."""
    q = pl.col("q")
    return _as_float(
        pair_table(lines, "category")
        .group_by(CUSTOMER_CODE)
        .agg(
            k_n=pl.len(),
            k_q=q.sum(),
            k_max_q=q.max(),
            # Entropy is ln Q - sum(q ln q) / Q; zero-quantity categories carry no share.
            k_q_log_q=pl.when(q > 0).then(q * q.log()).otherwise(0.0).sum(),
            k_deep=(pl.col("orders") >= DEEP_CATEGORY_ORDERS).sum(),
        )
    )


def refund_rate_expr(gross: str = "o_gross", refund: str = "o_ref") -> pl.Expr:
    """Refunds over gross sales in [0, 1]; also the order proxy of problem escalation."""
    gross, refund = pl.col(gross), pl.col(refund)
    return (
        pl.when(gross > 0)
        .then((refund / gross).clip(0.0, 1.0))
        .when(refund > 0)
        .then(1.0)
        .otherwise(0.0)
    )


def product_feature_exprs() -> dict[str, pl.Expr]:
    """The product- and line-axis columns, as expressions over the raw aggregates."""
    n_cat, n_prod, cat_q = pl.col("k_n"), pl.col("p_n"), pl.col("k_q")
    hhi = ratio(pl.col("p_q_squares"), pl.col("p_q") ** 2)
    primary_category = share(pl.col("k_max_q"), cat_q)
    entropy = pl.when(cat_q > 0).then(cat_q.log() - pl.col("k_q_log_q") / cat_q).otherwise(0.0)
    refund = pl.col("o_ref")
    return {
        "category_exploration__distinct_categories": n_cat,
        "category_exploration__distinct_products": n_prod,
        "category_exploration__category_entropy": pl.when(n_cat >= 2)
        .then((entropy / n_cat.log()).clip(0.0, 1.0))
        .otherwise(0.0),
        "category_exploration__product_diversity": pl.when(pl.col("p_q") > 0)
        .then(1.0 - hhi)
        .otherwise(0.0),
        "repurchase_behavior__repurchased_product_share": share(pl.col("p_repurchased"), n_prod),
        "repurchase_behavior__mean_purchases_per_product": ratio(pl.col("p_orders_sum"), n_prod),
        "repurchase_behavior__top_product_quantity_share": share(pl.col("p_top_q"), pl.col("p_q")),
        "return_behavior__refund_rate": refund_rate_expr(),
        "return_behavior__refunded_line_share": share(pl.col("l_refunded"), pl.col("l_n")),
        "return_behavior__refunded_order_share": share(pl.col("o_ref_orders"), pl.col("o_n")),
        "return_behavior__total_refund": refund,
        "return_behavior__has_returned": (refund > 0).cast(pl.Float64),
        "return_behavior__recent_refund_rate": refund_rate_expr("o_recent_gross", "o_recent_ref"),
        "return_behavior__recent_refunded_order_share": share(
            pl.col("o_recent_ref_orders"), pl.col("o_recent_n")
        ),
        "product_knowledge__repeat_product_rate": share(
            pl.col("p_orders_sum") - n_prod, pl.col("p_orders_sum")
        ),
        "product_knowledge__deep_categories": pl.col("k_deep"),
        "product_knowledge__primary_category_share": primary_category,
        "value_sophistication__mean_item_price": ratio(
            pl.col("l_priced_gross"), pl.col("l_priced_qty")
        ),
        "value_sophistication__item_price_cv": pl.when(pl.col("l_unit_n") >= 2)
        .then(ratio(pl.col("l_unit_std"), pl.col("l_unit_mean")))
        .otherwise(0.0),
        "value_sophistication__discount_hunting": share(pl.col("l_discounted"), pl.col("l_n")),
        "value_sophistication__full_price_comfort": share(
            pl.col("l_premium_full"), pl.col("l_gross")
        ),
    }
