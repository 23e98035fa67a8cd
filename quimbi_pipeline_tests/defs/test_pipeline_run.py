"""The headless pipeline end to end on a small generated shop (one shared run)."""

from quimbi_pipeline.core.axes import AXES
from quimbi_pipeline.db.connection import connect


def test_every_row_is_accounted_for(pipeline_run) -> None:
    summary = pipeline_run.summary
    assert summary["rows_read"] == summary["rows_accepted"] + summary["rows_rejected"]
    assert summary["rows_read"] == pipeline_run.shop.order_lines
    tickets = summary["tickets"]
    assert tickets["rows_read"] == tickets["rows_accepted"] + tickets["rows_rejected"]
    assert tickets["rows_read"] == pipeline_run.shop.tickets


def test_every_axis_is_fitted_on_a_shop_with_all_signals(pipeline_run) -> None:
    summary = pipeline_run.summary
    assert sorted(summary["axes_fitted"]) == sorted(a.name for a in AXES)
    assert all(k >= 2 for k in summary["axis_k"].values())


def test_profiles_cover_every_customer(pipeline_run) -> None:
    with connect(pipeline_run.database_url) as conn:
        segmented, no_orders = conn.execute(
            "SELECT count(*) FILTER (WHERE segmentation_status = 'segmented'), "
            "count(*) FILTER (WHERE segmentation_status = 'no_orders') FROM customer_profiles"
        ).fetchone()
    assert segmented == pipeline_run.summary["customers"]
    assert segmented + no_orders == pipeline_run.summary["profiles_upserted"]
