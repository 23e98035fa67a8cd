"""The code location: it loads, names what the pipeline promises, and validates cleanly."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from quimbi_pipeline.core.axes import AXES
from quimbi_pipeline.definitions import defs

REPO_ROOT = Path(__file__).resolve().parents[2]

EXPECTED_ASSETS = {
    "raw_orders",
    "raw_tickets",
    "orders",
    "tickets",
    "customer_features",
    "stratified_sample",
    *(f"segment_models/{axis.name}" for axis in AXES),
    "segment_assignments",
    "customer_profiles",
    "archetypes",
    "temporal_snapshots",
    "daily_snapshots",
    "monthly_snapshots",
    "drift_reports",
}
# The names `quimbi-pipeline run` executes and the schedules target.
EXPECTED_JOBS = {
    "ingest_orders_job",
    "ingest_tickets_job",
    "lake_job",
    "segmentation_job",
    "profiles_job",
    "archetypes_job",
    "weekly_snapshot_job",
    "daily_snapshot_job",
    "monthly_snapshot_job",
    "snapshot_retention_job",
}
EXPECTED_SCHEDULE_JOBS = {
    "weekly_snapshot_schedule": "weekly_snapshot_job",
    "monthly_refit_schedule": "segmentation_job",
    "monthly_snapshot_schedule": "monthly_snapshot_job",
    "daily_snapshot_schedule": "daily_snapshot_job",
    "weekly_retention_schedule": "snapshot_retention_job",
}


@pytest.fixture(scope="module")
def repository() -> dg.RepositoryDefinition:
    return defs.get_repository_def()


def test_fourteen_axes_each_have_a_model_asset() -> None:
    assert len(AXES) == 14
    assert len({a for a in EXPECTED_ASSETS if a.startswith("segment_models/")}) == 14


def test_definitions_name_the_expected_assets(repository: dg.RepositoryDefinition) -> None:
    keys = {key.to_user_string() for key in repository.asset_graph.get_all_asset_keys()}
    assert keys == EXPECTED_ASSETS


def test_definitions_name_the_expected_jobs(repository: dg.RepositoryDefinition) -> None:
    jobs = {job.name for job in repository.get_all_jobs()}
    assert jobs >= EXPECTED_JOBS


def test_schedules_target_their_jobs(repository: dg.RepositoryDefinition) -> None:
    targets = {schedule.name: schedule.job_name for schedule in repository.schedule_defs}
    assert targets == EXPECTED_SCHEDULE_JOBS
    # Daily snapshots are opt-in; the others run as soon as the daemon does.
    statuses = {s.name: s.default_status for s in repository.schedule_defs}
    assert statuses.pop("daily_snapshot_schedule") == dg.DefaultScheduleStatus.STOPPED
    assert set(statuses.values()) == {dg.DefaultScheduleStatus.RUNNING}


def test_sensors_watch_the_landing_folder_and_automate_the_rest(
    repository: dg.RepositoryDefinition,
) -> None:
    sensors = {sensor.name: sensor for sensor in repository.sensor_defs}
    assert set(sensors) == {"landing_sensor", "pipeline_automation"}
    landing = sensors["landing_sensor"].asset_selection.resolve(repository.asset_graph)
    assert landing == {dg.AssetKey("raw_orders"), dg.AssetKey("raw_tickets")}
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in sensors.values())


def test_drop_assets_are_partitioned_by_drop(repository: dg.RepositoryDefinition) -> None:
    partitions = {
        name: repository.asset_graph.get(dg.AssetKey(name)).partitions_def
        for name in ("raw_orders", "raw_tickets")
    }
    assert isinstance(partitions["raw_orders"], dg.DynamicPartitionsDefinition)
    assert partitions["raw_orders"].name == "order_drops"
    assert partitions["raw_tickets"].name == "ticket_drops"
    checks = {
        (key.asset_key.to_user_string(), key.name)
        for key in repository.asset_graph.asset_check_keys
    }
    assert {("raw_orders", "rows_accounted_for"), ("raw_tickets", "rows_accounted_for")} <= checks


def test_snapshot_job_is_partitioned_weekly(repository: dg.RepositoryDefinition) -> None:
    job = repository.get_job("weekly_snapshot_job")
    assert isinstance(job.partitions_def, dg.WeeklyPartitionsDefinition)


_LOAD_AND_RECORD = """
import json, warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from quimbi_pipeline.definitions import defs
    repository = defs.get_repository_def()
    for job in repository.get_all_jobs():
        job.partitions_def
    for schedule in repository.schedule_defs:
        schedule.cron_schedule
print(json.dumps([
    f"{w.filename}:{w.lineno}: {w.category.__name__}: {w.message}"
    for w in caught if issubclass(w.category, DeprecationWarning)
]))
"""


def test_loading_the_definitions_emits_no_deprecation_warning() -> None:
    # A fresh interpreter: in this one the modules were imported (and warned) long ago.
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_AND_RECORD],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_dagster_validates_the_workspace() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "All code locations passed validation" in output
    assert "DeprecationWarning" not in output
