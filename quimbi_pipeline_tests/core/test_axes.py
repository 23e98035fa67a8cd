import re

import pytest

from quimbi_pipeline.core.axes import AXES, METRIC_COLUMNS, Axis, AxisFeature, axis, axis_columns

SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")

EXPECTED_ORDER = (
    "purchase_frequency",
    "purchase_value",
    "category_exploration",
    "price_sensitivity",
    "purchase_cadence",
    "customer_maturity",
    "repurchase_behavior",
    "return_behavior",
    "communication_preference",
    "problem_complexity_profile",
    "loyalty_trajectory",
    "product_knowledge",
    "value_sophistication",
    "support_history",
)


def test_fourteen_axes_in_contract_order():
    assert tuple(a.name for a in AXES) == EXPECTED_ORDER


def test_metric_columns_are_the_contract():
    assert METRIC_COLUMNS == (
        "lifetime_value",
        "total_orders",
        "avg_order_value",
        "days_since_last_purchase",
        "customer_tenure_days",
        "churn_risk_score",
    )


@pytest.mark.parametrize("ax", AXES, ids=lambda a: a.name)
def test_features_are_well_formed(ax: Axis):
    names = [f.name for f in ax.features]
    assert len(names) >= 3
    assert len(set(names)) == len(names)
    assert ax.description
    for f in ax.features:
        assert SNAKE.match(f.name), f.name
        assert f.transform in {"log1p", "identity"}
        assert SNAKE.match(f.high) and SNAKE.match(f.low), (f.high, f.low)
        assert f.high != f.low
        assert f.description and "\n" not in f.description


def test_columns_join_axis_and_feature_names():
    ax = axis("purchase_frequency")
    assert ax.columns()[0] == "purchase_frequency__orders_per_month"
    assert len(ax.columns()) == len(ax.features)
    assert axis_columns() == [c for a in AXES for c in a.columns()]
    assert len(set(axis_columns())) == len(axis_columns())


def test_axis_lookup_and_unknown_name():
    assert axis("support_history") is AXES[-1]
    with pytest.raises(KeyError, match="unknown axis 'nope'"):
        axis("nope")


def test_dataclasses_are_frozen():
    feature = AXES[0].features[0]
    assert isinstance(feature, AxisFeature)
    with pytest.raises(AttributeError):
        feature.name = "other"  # type: ignore[misc]


def test_shares_are_identity_and_money_is_log():
    transforms = {
        c: f.transform for a in AXES for c, f in zip(a.columns(), a.features, strict=True)
    }
    assert transforms["purchase_value__lifetime_value"] == "log1p"
    assert transforms["purchase_frequency__mean_gap_days"] == "log1p"
    assert transforms["price_sensitivity__discounted_order_share"] == "identity"
    assert transforms["loyalty_trajectory__order_trend"] == "identity"
