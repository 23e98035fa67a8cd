"""Named jobs: what the schedules, the sensor and `quimbi-pipeline run` execute.

Each job's partitioning is inferred from the assets it selects."""

import dagster as dg

ingest_orders_job = dg.define_asset_job(
    "ingest_orders_job",
    selection=dg.AssetSelection.assets("raw_orders"),
    description="Parse order-export drops into the lake.",
)

ingest_tickets_job = dg.define_asset_job(
    "ingest_tickets_job",
    selection=dg.AssetSelection.assets("raw_tickets"),
    description="Parse support-ticket drops into the lake.",
)

lake_job = dg.define_asset_job(
    "lake_job",
    selection=dg.AssetSelection.assets("orders", "tickets"),
    description="Union every ingested drop into the orders and tickets tables.",
)

segmentation_job = dg.define_asset_job(
    "segmentation_job",
    selection=dg.AssetSelection.assets("customer_features", "stratified_sample")
    | dg.AssetSelection.key_prefixes("segment_models"),
    description="Compute customer features, draw the stratified sample, fit every axis model.",
)

profiles_job = dg.define_asset_job(
    "profiles_job",
    selection=dg.AssetSelection.assets("segment_assignments", "customer_profiles"),
    description="Assign customer batches to the current models and upsert their profiles.",
)

archetypes_job = dg.define_asset_job(
    "archetypes_job",
    selection=dg.AssetSelection.assets("archetypes"),
    description="Rank the combinations of dominant segments across axes.",
)

snapshot_job = dg.define_asset_job(
    "weekly_snapshot_job",
    selection=dg.AssetSelection.assets("temporal_snapshots", "drift_reports"),
    description="Weekly thumbprint snapshot of every customer and the drift since last week.",
)

daily_snapshot_job = dg.define_asset_job(
    "daily_snapshot_job",
    selection=dg.AssetSelection.assets("daily_snapshots"),
)

monthly_snapshot_job = dg.define_asset_job(
    "monthly_snapshot_job",
    selection=dg.AssetSelection.assets("monthly_snapshots"),
)

INGEST_JOBS = {"orders": ingest_orders_job, "tickets": ingest_tickets_job}
ALL_JOBS = [
    ingest_orders_job,
    ingest_tickets_job,
    lake_job,
    segmentation_job,
    profiles_job,
    archetypes_job,
    snapshot_job,
    daily_snapshot_job,
    monthly_snapshot_job,
]
