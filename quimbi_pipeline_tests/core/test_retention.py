from datetime import date, timedelta

import polars as pl
import pytest

from quimbi_pipeline.core.retention import SNAPSHOT_TYPES, RetentionPolicy, expired_snapshots

TODAY = date(2024, 6, 30)


def _snapshots(pairs: list[tuple[date, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        pairs, schema={"snapshot_date": pl.Date, "snapshot_type": pl.String}, orient="row"
    )


@pytest.mark.parametrize(
    ("snapshot_type", "days"),
    [("daily", 7), ("weekly", 60), ("monthly", 365), ("quarterly", 730), ("yearly", 1825)],
)
def test_expires_one_day_after_the_retention_period(snapshot_type: str, days: int) -> None:
    kept = TODAY - timedelta(days=days)
    expired = TODAY - timedelta(days=days + 1)
    snapshots = _snapshots([(kept, snapshot_type), (expired, snapshot_type)])
    assert expired_snapshots(snapshots, today=TODAY).rows() == [(expired, snapshot_type)]


def test_each_type_uses_its_own_period() -> None:
    forty_days_ago = TODAY - timedelta(days=40)
    snapshots = _snapshots([(forty_days_ago, kind) for kind in SNAPSHOT_TYPES])
    assert expired_snapshots(snapshots, today=TODAY).rows() == [(forty_days_ago, "daily")]


def test_future_and_today_snapshots_are_kept() -> None:
    snapshots = _snapshots([(TODAY, "daily"), (TODAY + timedelta(days=30), "daily")])
    assert expired_snapshots(snapshots, today=TODAY).is_empty()


def test_custom_policy_and_duplicate_pairs() -> None:
    old = TODAY - timedelta(days=3)
    snapshots = _snapshots([(old, "daily"), (old, "daily"), (TODAY, "daily")])
    policy = RetentionPolicy(daily_days=2)
    assert expired_snapshots(snapshots, today=TODAY, policy=policy).rows() == [(old, "daily")]
    assert expired_snapshots(snapshots, today=TODAY).is_empty()


def test_output_is_sorted_and_has_only_the_pair_columns() -> None:
    snapshots = _snapshots(
        [(date(2020, 1, 1), "weekly"), (date(2019, 1, 1), "monthly"), (date(2020, 1, 1), "daily")]
    ).with_columns(rows=pl.lit(10))
    expired = expired_snapshots(snapshots, today=TODAY)
    assert expired.columns == ["snapshot_date", "snapshot_type"]
    assert expired.rows() == [
        (date(2019, 1, 1), "monthly"),
        (date(2020, 1, 1), "daily"),
        (date(2020, 1, 1), "weekly"),
    ]


def test_unknown_type_is_rejected() -> None:
    with pytest.raises(ValueError, match="hourly"):
        expired_snapshots(_snapshots([(TODAY, "hourly")]), today=TODAY)


def test_negative_retention_is_rejected() -> None:
    with pytest.raises(ValueError, match="weekly_days"):
        RetentionPolicy(weekly_days=-1)


def test_empty_input_gives_empty_output() -> None:
    expired = expired_snapshots(_snapshots([]), today=TODAY)
    assert expired.is_empty()
    assert expired.schema == pl.Schema({"snapshot_date": pl.Date, "snapshot_type": pl.String})
