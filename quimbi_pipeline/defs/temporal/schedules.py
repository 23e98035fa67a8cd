"""Schedules that replace the reference system's cron lines."""

import dagster as dg

from quimbi_pipeline.defs.jobs import (
    daily_snapshot_job,
    monthly_snapshot_job,
    segmentation_job,
    snapshot_job,
)
from quimbi_pipeline.defs.temporal.retention import snapshot_retention_job

# Sunday 03:00: last week's snapshot and its drift report.
weekly_snapshot_schedule = dg.build_schedule_from_partitioned_job(
    snapshot_job,
    name="weekly_snapshot_schedule",
    day_of_week=0,
    hour_of_day=3,
    minute_of_hour=0,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

# The 1st at 02:00: re-fit features, sample and every axis model; assignments, profiles and
# archetypes follow through their eager automation conditions.
monthly_refit_schedule = dg.ScheduleDefinition(
    name="monthly_refit_schedule",
    job=segmentation_job,
    cron_schedule="0 2 1 * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

# The 1st at 02:30: last month's snapshot (kept a year by the retention policy).
monthly_snapshot_schedule = dg.build_schedule_from_partitioned_job(
    monthly_snapshot_job,
    name="monthly_snapshot_schedule",
    day_of_month=1,
    hour_of_day=2,
    minute_of_hour=30,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

# Daily snapshots are opt-in: start this schedule in the UI to keep a week of them.
daily_snapshot_schedule = dg.build_schedule_from_partitioned_job(
    daily_snapshot_job,
    name="daily_snapshot_schedule",
    hour_of_day=1,
    minute_of_hour=30,
    default_status=dg.DefaultScheduleStatus.STOPPED,
)


@dg.schedule(
    job=snapshot_retention_job,
    cron_schedule="0 5 * * 0",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def weekly_retention_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Sunday 05:00: thin snapshots by their retention, as of the tick's date."""
    today = context.scheduled_execution_time.date().isoformat()
    return dg.RunRequest(
        run_key=f"retention-{today}",
        run_config={"ops": {"apply_snapshot_retention": {"config": {"today": today}}}},
    )


SCHEDULES = [
    weekly_snapshot_schedule,
    monthly_refit_schedule,
    monthly_snapshot_schedule,
    daily_snapshot_schedule,
    weekly_retention_schedule,
]
