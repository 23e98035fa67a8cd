"""Snapshots, drift reports, retention and the schedules, against a real PostgreSQL.

The lake holds the session's generated ``small_shop`` (400 customers, 2023), ingested with the
real code; quick models fitted on it are stored in each test's ``clean_db``. The Dagster
instance lives on tmpfs when there is one (every event is a commit).
"""

import json
import math
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import dagster as dg
import polars as pl
import psycopg
import pytest
from polars.testing import assert_frame_equal

from quimbi_pipeline.core.axes import AXES
from quimbi_pipeline.core.axis_models import fit_axis_on_frame
from quimbi_pipeline.core.drift import (
    DRIFT_SUFFIX,
    SEVERITIES,
    customer_drift_wide,
    severity,
    thumbprint_drift,
)
from quimbi_pipeline.core.features import compute_customer_features
from quimbi_pipeline.core.generator import GenerateReport
from quimbi_pipeline.core.retention import RetentionPolicy
from quimbi_pipeline.core.segmentation import AxisModel, SegmentationConfig
from quimbi_pipeline.core.snapshots import SnapshotSeries, take_snapshot
from quimbi_pipeline.db.connection import connect
from quimbi_pipeline.db.migrations import apply_migrations
from quimbi_pipeline.db.models_store import save_axis_model
from quimbi_pipeline.definitions import defs
from quimbi_pipeline.defs.partitions import weekly_snapshots
from quimbi_pipeline.defs.resources import LakeResource, PostgresResource
from quimbi_pipeline.defs.temporal.assets import temporal_snapshots
from quimbi_pipeline.defs.temporal.drift import drift_reports
from quimbi_pipeline.defs.temporal.retention import snapshot_retention_job
from quimbi_pipeline.defs.temporal.tables import (
    SNAPSHOT_COLUMNS,
    RowWriter,
    drift_report,
    drift_rows,
)
from quimbi_pipeline.feature_store import orders_path, tickets_path
from quimbi_pipeline.home import QuimbiHome
from quimbi_pipeline.temporal_store import (
    read_drift,
    read_model_versions,
    read_snapshot,
    snapshot_path,
    write_snapshot,
)
from quimbi_pipeline_tests.datasets import ingest_to_lake
from quimbi_pipeline_tests.jsonb_order import loads_in_jsonb_order

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
# Weekly partitions start on Sundays; a partition's snapshot is of its Saturday.
LAST_WEEK = "2023-12-24"  # Dec 24-30: the last full week of the shop's year


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    shm = Path("/dev/shm")
    with (
        tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as folder,
        dg.instance_for_test(temp_dir=folder) as test_instance,
    ):
        yield test_instance


@pytest.fixture(scope="module")
def lake(small_shop: GenerateReport, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Orders and tickets of the small shop, where the lake keeps them (read-only here)."""
    root = tmp_path_factory.mktemp("temporal_lake")
    home = QuimbiHome.at(root / "home").ensure()
    files = [*small_shop.order_files, *small_shop.ticket_files]
    ingest_to_lake(files, root / "raw", orders_path(home), tickets_path(home))
    return home.root


@pytest.fixture(scope="module")
def models(lake: Path) -> dict[str, AxisModel]:
    home = QuimbiHome.at(lake)
    features = compute_customer_features(
        pl.read_parquet(orders_path(home)), pl.read_parquet(tickets_path(home))
    ).frame
    quick = SegmentationConfig(k_max=3, subdivide=False)
    return {axis.name: fit_axis_on_frame(axis, features, config=quick) for axis in AXES}


@pytest.fixture
def home(lake: Path, tmp_path: Path) -> QuimbiHome:
    """A home of the test's own whose lake has the shop's orders and tickets."""
    home = QuimbiHome.at(tmp_path / "home").ensure()
    for path in (orders_path, tickets_path):
        path(home).parent.mkdir(parents=True, exist_ok=True)
        path(home).write_bytes(path(QuimbiHome.at(lake)).read_bytes())
    return home


@pytest.fixture
def db(clean_db: str, models: dict[str, AxisModel]) -> str:
    """A fresh database holding the models as the segmentation job stores them."""
    apply_migrations(clean_db)
    with connect(clean_db) as conn:
        for axis, model in models.items():
            save_axis_model(
                conn,
                axis,
                model=model,
                reason=None,
                sample_size=400,
                data_as_of=datetime(2023, 12, 31),
            )
    return clean_db


def materialize(
    instance: dg.DagsterInstance,
    home: QuimbiHome,
    url: str,
    assets: list[dg.AssetsDefinition],
    first: str,
    last: str | None = None,
) -> dg.ExecuteInProcessResult:
    """One run over the weekly partitions ``first``..``last`` (one partition without last)."""
    resources = {"lake": LakeResource(home=str(home.root)), "postgres": PostgresResource(url=url)}
    if last is None:
        return dg.materialize(assets, instance=instance, resources=resources, partition_key=first)
    return dg.materialize(
        assets,
        instance=instance,
        resources=resources,
        tags={RANGE_START: first, RANGE_END: last},
        selection=assets,
    )


def metadata(result: dg.ExecuteInProcessResult, asset: dg.AssetsDefinition) -> dict:
    for event in result.get_asset_materialization_events():
        if event.materialization.asset_key == asset.key:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"{asset.key.to_user_string()} was not materialized")


def snapshot_rows(url: str) -> list[tuple]:
    with connect(url) as conn:
        return conn.execute(
            "SELECT customer_id, snapshot_date, snapshot_type, thumbprint::text, "
            "dominant_segments::text, churn_risk_score, total_orders, lifetime_value, "
            "model_version FROM temporal_snapshots ORDER BY snapshot_date, customer_id"
        ).fetchall()


def saturday(key: str) -> date:
    return date.fromisoformat(key) + timedelta(days=6)


def test_a_week_snapshot_is_rerunnable(
    instance: dg.DagsterInstance, home: QuimbiHome, db: str, models: dict[str, AxisModel]
) -> None:
    first = materialize(instance, home, db, [temporal_snapshots], LAST_WEEK)
    rows = snapshot_rows(db)
    second = materialize(instance, home, db, [temporal_snapshots], LAST_WEEK)
    assert first.success and second.success
    assert snapshot_rows(db) == rows
    day = saturday(LAST_WEEK)
    expected = take_snapshot(
        pl.read_parquet(orders_path(home)), pl.read_parquet(tickets_path(home)), day, models
    )
    assert len(rows) == expected.customers.height > 300
    assert {(r[1], r[2]) for r in rows} == {(day, "weekly")}
    assert len({r[0] for r in rows}) == len(rows)
    with connect(db) as conn:
        duplicate = conn.execute(
            "INSERT INTO temporal_snapshots (customer_id, snapshot_date, snapshot_type, "
            "thumbprint, dominant_segments) SELECT customer_id, snapshot_date, snapshot_type, "
            "thumbprint, dominant_segments FROM temporal_snapshots LIMIT 1 "
            "ON CONFLICT (customer_id, snapshot_date, snapshot_type) DO NOTHING"
        ).rowcount
    assert duplicate == 0
    # The stored thumbprints are the core snapshot's.
    thumbprints = expected.thumbprints()
    assert [json.loads(r[3]) for r in rows] == [json.loads(t) for t in thumbprints["thumbprint"]]
    assert [json.loads(r[4]) for r in rows] == [
        json.loads(t) for t in thumbprints["dominant_segments"]
    ]
    shown = metadata(second, temporal_snapshots)
    assert (shown["snapshots"], shown["written_to_postgres"]) == (1, 1)
    assert read_snapshot(home, "weekly", day).height == len(rows)


def test_one_backfill_run_fills_every_week(
    instance: dg.DagsterInstance, home: QuimbiHome, db: str, models: dict[str, AxisModel]
) -> None:
    first, last = "2023-09-03", LAST_WEEK
    runs_before = len(instance.get_run_records())
    result = materialize(instance, home, db, [temporal_snapshots], first, last)
    assert result.success
    assert len(instance.get_run_records()) == runs_before + 1
    keys = weekly_snapshots.get_partition_keys_in_range(dg.PartitionKeyRange(first, last))
    days = [saturday(k) for k in keys]
    assert len(days) == 17
    assert all(snapshot_path(home, "weekly", d).exists() for d in days)
    # PostgreSQL keeps the weeks within the weekly retention of the data's last order.
    last_order = pl.read_parquet(orders_path(home))["ordered_at"].max().date()
    kept = [d for d in days if (last_order - d).days <= RetentionPolicy().weekly_days]
    with connect(db) as conn:
        stored = conn.execute(
            "SELECT snapshot_date, count(*) FROM temporal_snapshots GROUP BY 1 ORDER BY 1"
        ).fetchall()
    assert [d for d, _ in stored] == kept
    assert all(count == read_snapshot(home, "weekly", d).height for d, count in stored)
    shown = metadata(result, temporal_snapshots)
    assert shown["snapshots"] == 17
    assert shown["written_to_postgres"] == len(kept)
    assert shown["lake_only_beyond_retention"] == 17 - len(kept)
    # The weeks were computed on two threads, each range by its own series: every week
    # equals the one a single series takes going through the weeks in order.
    assert shown["threads"] == 2
    series = SnapshotSeries(
        pl.read_parquet(orders_path(home)), pl.read_parquet(tickets_path(home)), models
    )
    for day in days:
        assert_frame_equal(read_snapshot(home, "weekly", day), series.take(day).wide())
    # Drift of the 16 weeks that have a previous one, also on two threads: each week's
    # report is the one computed from its two snapshots alone.
    result = materialize(instance, home, db, [drift_reports], keys[1], last)
    assert result.success
    shown = metadata(result, drift_reports)
    assert (shown["weeks"], shown["threads"]) == (16, 2)
    for previous_day, day in pairwise(days):
        by_axis = thumbprint_drift(
            read_snapshot(home, "weekly", previous_day), read_snapshot(home, "weekly", day)
        )
        expected = drift_report(by_axis, customer_drift_wide(by_axis))
        assert_frame_equal(read_drift(home, day), expected)
    with connect(db) as conn:
        reported = [d for (d,) in conn.execute("SELECT DISTINCT report_date FROM drift_reports")]
    assert sorted(reported) == [d for d in kept if d != days[0]]


def test_drift_reports_depend_on_this_and_the_previous_week() -> None:
    mapping = drift_reports.get_partition_mapping(temporal_snapshots.key)
    subset = weekly_snapshots.empty_subset().with_partition_keys([LAST_WEEK])
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        subset, weekly_snapshots, weekly_snapshots
    )
    assert sorted(upstream.partitions_subset.get_partition_keys()) == ["2023-12-17", LAST_WEEK]


def test_drift_reports_compute_the_documented_formula_and_store_the_movers(
    instance: dg.DagsterInstance, home: QuimbiHome, db: str
) -> None:
    weeks = ("2023-12-03", LAST_WEEK)
    assert materialize(instance, home, db, [temporal_snapshots], "2023-11-26", LAST_WEEK).success
    result = materialize(instance, home, db, [drift_reports], *weeks)
    assert result.success
    shown = metadata(result, drift_reports)
    assert shown["weeks"] == 4 and shown["weeks_without_previous_snapshot"] == 0
    day = saturday(LAST_WEEK)
    previous_day = day - timedelta(days=7)
    with connect(db) as conn:
        thumbprints = {
            (customer, snapshot_date): thumbprint
            for customer, snapshot_date, thumbprint in conn.execute(
                "SELECT customer_id, snapshot_date, thumbprint FROM temporal_snapshots "
                "WHERE snapshot_date IN (%s, %s)",
                (previous_day, day),
            ).fetchall()
        }
        rows = {
            r[0]: r
            for r in conn.execute(
                "SELECT customer_id, previous_date, overall_drift, max_axis_drift, severity, "
                "anomaly, axes_changed, axis_drift FROM drift_reports WHERE report_date = %s",
                (day,),
            ).fetchall()
        }
        report_dates = [
            d for (d,) in conn.execute("SELECT DISTINCT report_date FROM drift_reports ORDER BY 1")
        ]
    assert report_dates == [saturday(k) for k in ("2023-12-03", "2023-12-10", "2023-12-17")] + [day]
    report = read_drift(home, day).to_dicts()
    assert len(report) == len({c for c, d in thumbprints if d == previous_day})
    moved = stable = 0
    for entry in report:
        customer = entry["customer_id"]
        old, new = thumbprints[(customer, previous_day)], thumbprints[(customer, day)]
        # The documented formula, from the stored thumbprints.
        drift = {axis: min(1.0, math.dist(old[axis], new[axis]) / math.sqrt(2)) for axis in new}
        for axis, value in drift.items():
            assert entry[axis + DRIFT_SUFFIX] == pytest.approx(value, abs=1e-6)
        overall = sum(drift.values()) / len(drift)
        assert entry["overall_drift"] == pytest.approx(overall, abs=1e-6)
        assert entry["anomaly"] == (entry["overall_drift"] >= 0.5)
        assert entry["severity"] == severity(entry["overall_drift"])
        if max(drift.values()) < 0.1 - 1e-6:
            assert customer not in rows
            stable += 1
            continue
        moved += 1
        row = rows[customer]
        assert row[1] == previous_day
        assert row[2] == pytest.approx(entry["overall_drift"])
        assert row[3] == pytest.approx(max(drift.values()), abs=1e-6)
        assert (row[4], row[5]) == (entry["severity"], entry["anomaly"])
        # Moved axes only, each with its band and its drift per day.
        assert set(row[7]) == {
            a for a, v in drift.items() if v >= 0.1 or row[7].get(a, {}).get("changed")
        }
        for axis, details in row[7].items():
            assert details["drift"] == pytest.approx(drift[axis], abs=1e-4)
            assert details["severity"] == severity(round(drift[axis], 6))
            assert details["severity"] in SEVERITIES
            assert details["velocity"] == pytest.approx(drift[axis] / 7, abs=1e-6)
            assert details["changed"] == (details["from"] != details["to"])
    assert moved == len(rows) > 0 and stable > 0
    assert shown["customers_compared"] == len(report)


def test_drift_rows_list_axis_drift_keys_in_jsonb_storage_order() -> None:
    axes = ["return_behavior", "price_sensitivity", "purchase_value", "loyalty_trajectory"]
    by_axis = pl.DataFrame(
        {
            "customer_id": ["c1"] * len(axes) + ["c2"],
            "axis": [*axes, "price_sensitivity"],
            "drift": [0.4, 0.3, 0.05, 0.2, 0.35],
            "severity": ["MAJOR", "MODERATE", "STABLE", "MINOR", "MODERATE"],
            "velocity": [0.05, 0.04, 0.0, 0.03, 0.05],
            "previous_segment": ["a", "b", "c", "d", "b"],
            "current_segment": ["a", "e", "c", "d", "e"],
            "segment_changed": [False, True, False, False, True],
        }
    )
    by_customer = pl.DataFrame(
        {
            "customer_id": ["c1", "c2"],
            "overall_drift": [0.24, 0.35],
            "max_axis_drift": [0.4, 0.35],
            "severity": ["MODERATE", "MODERATE"],
            "anomaly": [False, False],
            "axes_changed": [1, 1],
        }
    )
    day = date(2024, 1, 6)
    rows = drift_rows(by_axis, by_customer, day, day - timedelta(days=7), min_drift=0.1)

    maps = {
        r["customer_id"]: loads_in_jsonb_order(r["axis_drift"]) for r in rows.iter_rows(named=True)
    }
    # The STABLE axis without a segment change is left out; the others keep their values.
    assert list(maps["c1"]) == ["return_behavior", "price_sensitivity", "loyalty_trajectory"]
    assert maps["c1"]["price_sensitivity"] == {
        "to": "e",
        "from": "b",
        "drift": 0.3,
        "changed": True,
        "severity": "MODERATE",
        "velocity": 0.04,
    }
    assert set(maps["c2"]) == {"price_sensitivity"}


def test_the_first_week_of_a_history_has_no_drift(
    instance: dg.DagsterInstance, home: QuimbiHome, db: str
) -> None:
    assert materialize(instance, home, db, [temporal_snapshots], LAST_WEEK).success
    result = materialize(instance, home, db, [drift_reports], LAST_WEEK)
    shown = metadata(result, drift_reports)
    assert (shown["weeks"], shown["weeks_without_previous_snapshot"]) == (0, 1)
    with connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM drift_reports").fetchone()[0] == 0


def test_a_refit_resnapshots_the_week_before_with_the_new_models(
    instance: dg.DagsterInstance, home: QuimbiHome, db: str, models: dict[str, AxisModel]
) -> None:
    before = saturday(LAST_WEEK) - timedelta(days=7)
    stale = take_snapshot(
        pl.read_parquet(orders_path(home)),
        None,
        before,
        {"price_sensitivity": models["price_sensitivity"]},
    )
    write_snapshot(home, "weekly", stale, {"price_sensitivity": 0})
    result = materialize(instance, home, db, [temporal_snapshots], LAST_WEEK)
    shown = metadata(result, temporal_snapshots)
    assert (shown["snapshots"], shown["resnapshotted_for_new_models"]) == (2, 1)
    assert read_model_versions(home, "weekly", before) == {axis: 1 for axis in models}
    assert read_snapshot(home, "weekly", before).width > stale.wide().width


def test_the_retention_job_deletes_exactly_the_expired_dates(clean_db: str) -> None:
    # Each type's last kept day and first expired day, and drift reports on both sides of
    # the weekly retention.
    apply_migrations(clean_db)
    today = date(2024, 6, 30)
    ages = {"daily": (7, 8), "weekly": (60, 61), "monthly": (365, 366), "yearly": (1825, 1826)}
    pairs = [(today - timedelta(days=age), kind) for kind, span in ages.items() for age in span]
    pairs.append((today + timedelta(days=3), "daily"))  # a date after today is never expired
    with connect(clean_db) as conn:
        for snapshot_date, kind in pairs:
            for customer in ("c1", "c2"):
                conn.execute(
                    "INSERT INTO temporal_snapshots (customer_id, snapshot_date, snapshot_type,"
                    " thumbprint, dominant_segments) VALUES (%s, %s, %s, '{}', '{}')",
                    (customer, snapshot_date, kind),
                )
        for age in (60, 61):
            report = today - timedelta(days=age)
            conn.execute(
                "INSERT INTO drift_reports (customer_id, report_date, previous_date, "
                "overall_drift, max_axis_drift, severity, anomaly, axes_changed, axis_drift) "
                "VALUES ('c1', %s, %s, 0.2, 0.4, 'MINOR', false, 1, '{}')",
                (report, report - timedelta(days=7)),
            )
        conn.commit()
    result = snapshot_retention_job.execute_in_process(
        run_config={"ops": {"apply_snapshot_retention": {"config": {"today": today.isoformat()}}}},
        resources={"postgres": PostgresResource(url=clean_db)},
    )
    assert result.success
    expired = {(today - timedelta(days=span[1]), kind) for kind, span in ages.items()}
    assert result.output_for_node("apply_snapshot_retention") == 2 * len(expired)
    with connect(clean_db) as conn:
        left = set(
            conn.execute("SELECT DISTINCT snapshot_date, snapshot_type FROM temporal_snapshots")
        )
        reports = [d for (d,) in conn.execute("SELECT report_date FROM drift_reports")]
    assert left == set(pairs) - expired
    assert reports == [today - timedelta(days=60)]


def test_the_row_writer_writes_in_order_and_raises_the_first_error(clean_db: str) -> None:
    apply_migrations(clean_db)

    def rows(customer: str, day: date) -> pl.DataFrame:
        return pl.DataFrame(
            [(customer, day, "weekly", "{}", "{}", None, None, None, None)],
            schema=SNAPSHOT_COLUMNS,
            orient="row",
        )

    days = [date(2024, 1, 6) + timedelta(days=7 * i) for i in range(5)]
    with (
        pytest.raises(psycopg.errors.UndefinedTable, match="no_such_table"),
        RowWriter(clean_db, pending=2) as writer,
    ):
        for i, day in enumerate(days):
            where = {"snapshot_date": day, "snapshot_type": "weekly"}
            writer.submit("temporal_snapshots", lambda i=i, d=day: rows(f"c{i}", d), where, 1)
        writer.submit("no_such_table", lambda: rows("x", days[0]), {"customer_id": "x"}, 1)
    with connect(clean_db) as conn:
        stored = conn.execute(
            "SELECT customer_id, snapshot_date FROM temporal_snapshots ORDER BY 2"
        ).fetchall()
    assert stored == [(f"c{i}", day) for i, day in enumerate(days)]


@pytest.fixture(scope="module")
def repository() -> dg.RepositoryDefinition:
    return defs.get_repository_def()


def tick(
    repository: dg.RepositoryDefinition,
    instance: dg.DagsterInstance,
    name: str,
    when: datetime,
) -> list[dg.RunRequest]:
    schedule = repository.get_schedule_def(name)
    context = dg.build_schedule_context(
        instance=instance, scheduled_execution_time=when, repository_def=repository
    )
    return list(schedule.evaluate_tick(context).run_requests or [])


# Raised inside Dagster's own partitioned schedule when it builds the run request.
@pytest.mark.filterwarnings("ignore:Function `JobDefinition.run_request_for_partition`")
def test_weekly_snapshot_schedule_runs_last_week_on_sunday_at_three(
    repository: dg.RepositoryDefinition, instance: dg.DagsterInstance
) -> None:
    schedule = repository.get_schedule_def("weekly_snapshot_schedule")
    assert schedule.cron_schedule == "0 3 * * 0"
    (request,) = tick(repository, instance, schedule.name, datetime(2024, 6, 9, 3, tzinfo=UTC))
    # Sunday June 9: the week of June 2-8 is complete.
    assert request.partition_key == "2024-06-02"
    job = repository.get_job(schedule.job_name)
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {
        "temporal_snapshots",
        "drift_reports",
    }


def test_monthly_refit_schedule_runs_on_the_first_at_two(
    repository: dg.RepositoryDefinition, instance: dg.DagsterInstance
) -> None:
    schedule = repository.get_schedule_def("monthly_refit_schedule")
    assert schedule.cron_schedule == "0 2 1 * *"
    (request,) = tick(repository, instance, schedule.name, datetime(2024, 7, 1, 2, tzinfo=UTC))
    assert request.partition_key is None
    refit = {
        k.to_user_string()
        for k in repository.get_job(schedule.job_name).asset_layer.executable_asset_keys
    }
    assert {"customer_features", "stratified_sample"} <= refit
    assert {f"segment_models/{axis.name}" for axis in AXES} <= refit


def test_weekly_retention_schedule_passes_its_tick_date_as_today(
    repository: dg.RepositoryDefinition, instance: dg.DagsterInstance
) -> None:
    schedule = repository.get_schedule_def("weekly_retention_schedule")
    assert schedule.job_name == snapshot_retention_job.name
    when = datetime(2024, 6, 9, 5, tzinfo=UTC)
    (request,) = tick(repository, instance, schedule.name, when)
    config = request.run_config["ops"]["apply_snapshot_retention"]["config"]
    assert config["today"] == "2024-06-09"
    assert request.run_key == "retention-2024-06-09"


# The reference system's crontab, and what replaces each line.
REFERENCE_CRON = {
    "pick up new export drops": "landing_sensor",
    "weekly snapshot and drift (Sunday 03:00)": "weekly_snapshot_schedule",
    "monthly re-fit of sample, models, assignments, profiles (1st, 02:00)": (
        "monthly_refit_schedule"
    ),
    "snapshot retention cleanup (weekly)": "weekly_retention_schedule",
}


def test_the_sensor_and_schedules_replace_every_reference_cron_line(
    repository: dg.RepositoryDefinition,
) -> None:
    sensors = {s.name: s for s in repository.sensor_defs}
    schedules = {s.name: s for s in repository.schedule_defs}
    for duty, name in REFERENCE_CRON.items():
        definition = sensors.get(name) or schedules.get(name)
        assert definition is not None, duty
        assert definition.default_status.value == "RUNNING", duty
    landing = sensors["landing_sensor"].asset_selection.resolve(repository.asset_graph)
    assert landing == {dg.AssetKey("raw_orders"), dg.AssetKey("raw_tickets")}
    assert schedules["weekly_retention_schedule"].cron_schedule.endswith("* * 0")
    # The re-fit job stops at the models: assignments and profiles follow by automation.
    automation = sensors["pipeline_automation"]
    assert automation.default_status == dg.DefaultSensorStatus.RUNNING
    graph = repository.asset_graph
    for downstream in ("segment_assignments", "customer_profiles"):
        assert graph.get(dg.AssetKey(downstream)).automation_condition is not None
