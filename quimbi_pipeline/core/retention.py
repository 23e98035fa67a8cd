"""Which snapshots have outlived their type's retention period and may be deleted.

The clock is always an argument: callers pass the data's as-of date or the schedule tick date,
so a rerun of an old partition deletes exactly what it deleted the first time.
"""

from dataclasses import dataclass, fields
from datetime import date

import polars as pl

SNAPSHOT_TYPES: tuple[str, ...] = ("daily", "weekly", "monthly", "quarterly", "yearly")


@dataclass(frozen=True)
class RetentionPolicy:
    """Days each snapshot type is kept; a snapshot older than that has expired."""

    daily_days: int = 7
    weekly_days: int = 60
    monthly_days: int = 365
    quarterly_days: int = 730
    yearly_days: int = 1825

    def __post_init__(self) -> None:
        for spec in fields(self):
            if getattr(self, spec.name) < 0:
                raise ValueError(f"{spec.name} must be >= 0, got {getattr(self, spec.name)}")

    def days_by_type(self) -> dict[str, int]:
        """Retention in days keyed by snapshot type."""
        return {kind: getattr(self, f"{kind}_days") for kind in SNAPSHOT_TYPES}


def expired_snapshots(
    snapshots: pl.DataFrame, *, today: date, policy: RetentionPolicy = RetentionPolicy()
) -> pl.DataFrame:
    """The distinct (``snapshot_date``, ``snapshot_type``) pairs older than their retention.

    A snapshot expires when ``today - snapshot_date`` is strictly more than its type's days, so
    a daily snapshot from exactly 7 days ago is still kept. Snapshots dated after ``today`` are
    never expired. An unknown ``snapshot_type`` raises ``ValueError`` rather than being kept or
    deleted by accident.

    Returns:
        ``snapshot_date``, ``snapshot_type``, sorted by date then type.
    """
    pairs = snapshots.select(
        pl.col("snapshot_date").cast(pl.Date), pl.col("snapshot_type").cast(pl.String)
    ).unique()
    unknown = set(pairs.get_column("snapshot_type").to_list()) - set(SNAPSHOT_TYPES)
    if unknown:
        raise ValueError(f"unknown snapshot types {sorted(unknown, key=str)}")
    keep_days = pl.col("snapshot_type").replace_strict(policy.days_by_type(), return_dtype=pl.Int64)
    age_days = (pl.lit(today, dtype=pl.Date) - pl.col("snapshot_date")).dt.total_days()
    return pairs.filter(age_days > keep_days).sort("snapshot_date", "snapshot_type")
