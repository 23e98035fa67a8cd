"""Every partitioning of the pipeline, in one place for assets, sensors and schedules."""

import dagster as dg

# One partition per order export file dropped in the landing folder (added by the sensor or
# by `quimbi-pipeline run`).
order_drops = dg.DynamicPartitionsDefinition(name="order_drops")

# One partition per support-ticket export file.
ticket_drops = dg.DynamicPartitionsDefinition(name="ticket_drops")

DROP_PARTITIONS = {"orders": order_drops, "tickets": ticket_drops}

# Customers split into a fixed number of batches by a stable hash of the customer id
# (core.assignment.customer_batch), so that one batch can be re-assigned and re-upserted alone.
CUSTOMER_BATCHES = 16
customer_batches = dg.StaticPartitionsDefinition([f"{i:02d}" for i in range(CUSTOMER_BATCHES)])

# Snapshot calendars. They start early enough for real order histories (the CDNOW log begins
# in 1997); `quimbi-pipeline run` backfills only the weeks that the data covers.
HISTORY_START = "1995-01-01"  # a Sunday: weeks run Sunday..Saturday
weekly_snapshots = dg.WeeklyPartitionsDefinition(start_date=HISTORY_START)
daily_snapshots = dg.DailyPartitionsDefinition(start_date=HISTORY_START)
monthly_snapshots = dg.MonthlyPartitionsDefinition(start_date=HISTORY_START)
SNAPSHOT_PARTITIONS = {
    "daily": daily_snapshots,
    "weekly": weekly_snapshots,
    "monthly": monthly_snapshots,
}
