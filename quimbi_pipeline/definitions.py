"""The Dagster code location: every asset, check, job, sensor and schedule of the pipeline."""

import dagster as dg

from quimbi_pipeline.defs.automation import automation_sensor
from quimbi_pipeline.defs.ingestion.assets import orders, raw_orders, raw_tickets, tickets
from quimbi_pipeline.defs.ingestion.sensors import landing_sensor
from quimbi_pipeline.defs.jobs import ALL_JOBS
from quimbi_pipeline.defs.profiles.assets import archetypes, customer_profiles, segment_assignments
from quimbi_pipeline.defs.resources import default_resources
from quimbi_pipeline.defs.segmentation.assets import customer_features, stratified_sample
from quimbi_pipeline.defs.segmentation.checks import sampling_fidelity
from quimbi_pipeline.defs.segmentation.models import segment_models
from quimbi_pipeline.defs.temporal.assets import (
    daily_snapshots,
    monthly_snapshots,
    temporal_snapshots,
)
from quimbi_pipeline.defs.temporal.drift import drift_reports
from quimbi_pipeline.defs.temporal.retention import snapshot_retention_job
from quimbi_pipeline.defs.temporal.schedules import SCHEDULES

defs = dg.Definitions(
    assets=[
        raw_orders,
        raw_tickets,
        orders,
        tickets,
        customer_features,
        stratified_sample,
        segment_models,
        segment_assignments,
        customer_profiles,
        archetypes,
        temporal_snapshots,
        daily_snapshots,
        monthly_snapshots,
        drift_reports,
    ],
    asset_checks=[sampling_fidelity],
    jobs=[*ALL_JOBS, snapshot_retention_job],
    schedules=SCHEDULES,
    sensors=[landing_sensor, automation_sensor],
    resources=default_resources(),
)
