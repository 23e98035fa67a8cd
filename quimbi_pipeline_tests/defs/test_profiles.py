"""Segment assignments and customer_profiles against a real PostgreSQL.

Tests that write use their own home (a copy of the shared run's features, sample and tickets)
and their own database (the shared run's models copied in); tests that only read use the
shared ``pipeline_run``.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import psycopg
import pytest

from quimbi_pipeline.core.assignment import customer_batch
from quimbi_pipeline.core.segmentation import assign_to_centroids
from quimbi_pipeline.db.connection import connect
from quimbi_pipeline.db.migrations import apply_migrations
from quimbi_pipeline.db.models_store import load_current_models, model_set_version, save_axis_model
from quimbi_pipeline.db.profiles_store import batch_lock_key, upsert_profile_batch
from quimbi_pipeline.db.sql_files import sql_dir
from quimbi_pipeline.defs.partitions import CUSTOMER_BATCHES
from quimbi_pipeline.defs.profiles.assets import (
    EVERY_AXIS_ASSIGNED,
    customer_profiles,
    segment_assignments,
)
from quimbi_pipeline.defs.profiles.frames import NO_ORDERS_REASON, profile_frame, read_batch
from quimbi_pipeline.defs.resources import LakeResource, PostgresResource
from quimbi_pipeline.defs.segmentation.models import model_key, segment_models
from quimbi_pipeline.feature_store import load_features, save_features, tickets_path
from quimbi_pipeline.home import QuimbiHome

ALL_BATCHES = {
    "dagster/asset_partition_range_start": "00",
    "dagster/asset_partition_range_end": f"{CUSTOMER_BATCHES - 1:02d}",
}
TIMESTAMPS = ("last_updated", "created_at")
QUERIES = sorted((sql_dir() / "queries").glob("*.sql"))


class Pipeline:
    """The profile assets over one home and one database."""

    def __init__(self, home: QuimbiHome, url: str) -> None:
        self.home, self.url = home, url
        self.resources = {
            "lake": LakeResource(home=str(home.root)),
            "postgres": PostgresResource(url=url),
        }

    def materialize(self, *assets, **kwargs) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            list(assets or (segment_assignments, customer_profiles)),
            resources=self.resources,
            tags=kwargs.pop("tags", ALL_BATCHES),
            **kwargs,
        )

    def rows(self, where: str = "TRUE") -> list[dict]:
        with connect(self.url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            return cur.execute(
                f"SELECT *, xmin::text AS row_version FROM customer_profiles WHERE {where} "
                "ORDER BY customer_id"
            ).fetchall()


def profiles_metadata(result: dg.ExecuteInProcessResult) -> dict:
    """The metadata of the run's customer_profiles materializations (one per batch, all alike)."""
    materializations = result.asset_materializations_for_node("customer_profiles")
    assert len(materializations) == CUSTOMER_BATCHES
    return {key: value.value for key, value in materializations[0].metadata.items()}


def without(rows: list[dict], columns: tuple[str, ...]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in columns} for row in rows]


@pytest.fixture
def pipeline(pipeline_run, clean_db: str, tmp_path: Path) -> Pipeline:
    """A fresh home and database holding the shared run's features, sample, tickets and models."""
    home = QuimbiHome.at(tmp_path / "home").ensure()
    for asset in ("customer_features", "stratified_sample", "tickets"):
        shutil.copytree(pipeline_run.home.asset_dir(asset), home.asset_dir(asset))
    apply_migrations(clean_db)
    with connect(pipeline_run.database_url) as source, connect(clean_db) as target:
        for axis, stored in load_current_models(source).items():
            save_axis_model(
                target,
                axis,
                model=stored.model,
                reason=stored.reason,
                sample_size=stored.model.sample_size if stored.model else 0,
                data_as_of=stored.data_as_of,
            )
    return Pipeline(home, clean_db)


def test_rerun_on_the_same_data_rewrites_nothing(pipeline: Pipeline) -> None:
    first = pipeline.materialize()
    assert first.success
    metadata = profiles_metadata(first)
    written = pipeline.rows()
    assert metadata["rows_upserted"] == metadata["rows_changed"] == len(written) > 0
    assert metadata["share_with_every_applicable_axis"] == 1.0
    [check] = first.get_asset_check_evaluations()
    assert check.check_name == EVERY_AXIS_ASSIGNED and check.passed
    assert "| price_sensitivity |" in metadata["segment_distribution"]

    second = pipeline.materialize()
    assert second.success
    assert profiles_metadata(second)["rows_changed"] == 0
    again = pipeline.rows()
    assert without(again, TIMESTAMPS) == without(written, TIMESTAMPS)
    # Unchanged rows are not rewritten at all: same timestamps and the same row versions.
    assert [r["last_updated"] for r in again] == [r["last_updated"] for r in written]
    assert [r["row_version"] for r in again] == [r["row_version"] for r in written]


def test_one_batch_is_reassigned_and_rewritten_alone(pipeline: Pipeline) -> None:
    assert pipeline.materialize().success
    before = {r["customer_id"]: r for r in pipeline.rows()}
    # One customer of batch 05 and one of another batch spend more after the first run.
    segmented = [r for r in before.values() if r["segmentation_status"] == "segmented"]
    inside = next(r["customer_id"] for r in segmented if r["customer_batch"] == 5)
    outside = next(r["customer_id"] for r in segmented if r["customer_batch"] != 5)
    features = load_features(pipeline.home)
    features.frame = features.frame.with_columns(
        lifetime_value=pl.when(pl.col("customer_id").is_in([inside, outside]))
        .then(pl.col("lifetime_value") + 1000.0)
        .otherwise(pl.col("lifetime_value"))
    )
    save_features(pipeline.home, features)

    result = pipeline.materialize(tags={}, partition_key="05")
    assert result.success
    for asset in ("segment_assignments", "customer_profiles"):
        [written] = result.asset_materializations_for_node(asset)
        assert written.partition == "05"
    after = {r["customer_id"]: r for r in pipeline.rows()}
    assert after[inside]["lifetime_value"] == pytest.approx(before[inside]["lifetime_value"] + 1000)
    assert after[inside]["row_version"] != before[inside]["row_version"]
    # The other batches were not touched, so their changed customer is not updated yet.
    assert after[outside] == before[outside]
    untouched = [c for c, row in before.items() if row["customer_batch"] != 5]
    assert [after[c]["row_version"] for c in untouched] == [
        before[c]["row_version"] for c in untouched
    ]


def test_every_profile_has_a_segment_on_every_fitted_axis(pipeline: Pipeline) -> None:
    assert pipeline.materialize().success
    with connect(pipeline.url) as conn:
        axes = {a for a, m in load_current_models(conn).items() if m.model is not None}
    segmented = pipeline.rows("segmentation_status = 'segmented'")
    assert len(segmented) == load_features(pipeline.home).frame.height
    for row in segmented:
        for column in ("dominant_segments", "membership_strengths", "fuzzy_memberships"):
            assert set(row[column]) == axes
        assert set(row["segment_memberships"]) == axes
        assert row["archetype_id"].startswith("a_")


def test_a_batch_without_assignments_fails_the_run_and_the_others_are_written(
    pipeline: Pipeline,
) -> None:
    assert pipeline.materialize(segment_assignments).success
    shutil.rmtree(pipeline.home.asset_dir("segment_assignments") / "batch_03")
    result = pipeline.materialize(customer_profiles, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "segment_assignments of batch 03 is not materialized yet" in str(
        failure.step_failure_data.error
    )
    batches = {row["customer_batch"] for row in pipeline.rows()}
    assert batches == set(range(CUSTOMER_BATCHES)) - {3}


def test_check_fails_for_customers_without_assignments(pipeline: Pipeline) -> None:
    assert pipeline.materialize().success
    # Features gain a customer after the assignments ran: its profile would lack segments.
    features = load_features(pipeline.home)
    newcomer = features.frame.head(1).with_columns(customer_id=pl.lit("newcomer-1"))
    features.frame = pl.concat([features.frame, newcomer])
    save_features(pipeline.home, features)

    result = pipeline.materialize(customer_profiles, raise_on_error=False)
    [check] = result.get_asset_check_evaluations()
    assert not check.passed
    assert check.metadata["share"].value == pytest.approx(1 - 1 / features.frame.height)


def test_refit_and_reassignment_move_every_profile_to_the_new_models(pipeline: Pipeline) -> None:
    assert pipeline.materialize().success
    before = pipeline.rows()
    axis = "purchase_cadence"
    with connect(pipeline.url) as conn:
        old = load_current_models(conn)
    refit = pipeline.materialize(
        segment_models,
        selection=[model_key(axis)],
        tags={},
        run_config={
            "ops": {"segment_models": {"config": {"k_max": 2, "subdivide": False, "seed": 11}}}
        },
    )
    assert refit.success
    with connect(pipeline.url) as conn:
        new = load_current_models(conn)
    assert new[axis].version == old[axis].version + 1
    assert len(new[axis].model.segment_names) == 2

    assert pipeline.materialize().success
    after = pipeline.rows()
    version = model_set_version(new)
    assert version != model_set_version(old)
    assert {r["model_version"] for r in before} == {model_set_version(old)}
    assert {r["model_version"] for r in after} == {version}

    features = load_features(pipeline.home).frame.sort("customer_id")
    model = new[axis].model
    matrix = features.select(f"{axis}__{f}" for f in model.feature_names).to_numpy()
    expected = np.asarray(model.segment_names)[assign_to_centroids(model, matrix).dominant]
    segmented = {r["customer_id"]: r for r in after if r["segmentation_status"] == "segmented"}
    assert [segmented[c]["dominant_segments"][axis] for c in features["customer_id"]] == list(
        expected
    )
    # The other axes kept their models, so their segments did not move.
    unchanged = {r["customer_id"]: r["dominant_segments"] for r in before}
    for cid, row in segmented.items():
        assert {a: s for a, s in row["dominant_segments"].items() if a != axis} == {
            a: s for a, s in unchanged[cid].items() if a != axis
        }


def test_ticket_only_customers_have_a_row_without_segments(pipeline_run) -> None:
    features = load_features(pipeline_run.home).frame
    ticket_ids = pl.read_parquet(tickets_path(pipeline_run.home))["customer_id"].unique()
    expected = sorted(set(ticket_ids) - set(features["customer_id"]))
    assert expected, "the generated shop should have customers known only from tickets"
    with connect(pipeline_run.database_url) as conn:
        rows = conn.execute(
            "SELECT customer_id, segmentation_status, status_reason, dominant_segments, "
            "segment_memberships, membership_strengths, fuzzy_memberships, archetype_id, "
            "total_orders FROM customer_profiles WHERE segmentation_status <> 'segmented' "
            "ORDER BY customer_id"
        ).fetchall()
    assert [r[0] for r in rows] == expected
    for row in rows:
        assert row[1:3] == ("no_orders", NO_ORDERS_REASON)
        assert row[3:] == (None,) * 6


@pytest.mark.parametrize("query", QUERIES, ids=[q.stem for q in QUERIES])
def test_use_case_query_returns_rows(pipeline_run, query: Path) -> None:
    with connect(pipeline_run.database_url) as conn:
        rows = conn.execute(query.read_text()).fetchall()
    assert len(rows) >= 1


@pytest.mark.parametrize("column", ["dominant_segments", "segment_memberships"])
def test_segment_containment_is_served_by_a_gin_index(pipeline_run, column: str) -> None:
    with connect(pipeline_run.database_url) as conn:
        segment = conn.execute(
            f"SELECT {column} -> 'purchase_value' FROM customer_profiles "
            f"WHERE {column} IS NOT NULL LIMIT 1"
        ).fetchone()[0]
        probe = json.dumps({"purchase_value": segment})
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                f"EXPLAIN SELECT customer_id FROM customer_profiles WHERE {column} @> %s::jsonb",
                [probe],
            ).fetchall()
        )
        found = conn.execute(
            f"SELECT count(*) FROM customer_profiles WHERE {column} @> %s::jsonb", [probe]
        ).fetchone()[0]
    assert f"customer_profiles_{column}" in plan
    assert found >= 1


def test_the_readme_use_cases_all_have_a_query() -> None:
    assert {q.stem for q in QUERIES} >= {
        "high_value_deal_hunters",
        "declining_high_value",
        "segment_distribution",
        "archetype_members",
        "senior_support_routing",
    }


# ---- one batch at a time, straight through the store ------------------------------------


def batch_frame(run, batch: int) -> pl.DataFrame:
    """The profile rows of one batch of the shared run (read from its lake, not changed)."""
    _, customers = read_batch(run.home, batch)
    ticket_only = pl.DataFrame(schema={"customer_id": pl.String, "batch": pl.Int32})
    return profile_frame(batch, customers, load_features(run.home).frame, ticket_only)


@pytest.fixture
def largest_batch(pipeline_run) -> int:
    ids = load_features(pipeline_run.home).frame["customer_id"]
    return customer_batch(ids, CUSTOMER_BATCHES).value_counts(sort=True)["batch"][0]


@pytest.fixture
def store(clean_db: str) -> str:
    apply_migrations(clean_db)
    return clean_db


def batch_rows(url: str, batch: int) -> list[dict]:
    """Every column of the batch's rows, and their physical row versions."""
    with connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            "SELECT *, xmin::text AS row_version FROM customer_profiles "
            "WHERE customer_batch = %s ORDER BY customer_id",
            (batch,),
        ).fetchall()


CHILD = """
import sys, time
import polars as pl
from quimbi_pipeline.db.connection import connect
from quimbi_pipeline.db.profiles_store import upsert_profile_batch

url, path, batch, seam = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

def hold():
    print("holding", flush=True)
    time.sleep(60)

with connect(url) as conn:
    upsert_profile_batch(conn, batch, pl.read_parquet(path), **{seam: hold})
print("committed", flush=True)
"""


@pytest.mark.parametrize("seam", ["after_copy", "before_commit"])
def test_killed_writer_leaves_the_batch_as_it_was(
    pipeline_run, store: str, largest_batch: int, tmp_path: Path, seam: str
) -> None:
    frame = batch_frame(pipeline_run, largest_batch)
    with connect(store) as conn:
        upsert_profile_batch(conn, largest_batch, frame)
    previous = batch_rows(store, largest_batch)
    assert len(previous) == frame.height

    changed = frame.with_columns(
        model_version=pl.lit("from_the_killed_run"), lifetime_value=pl.col("lifetime_value") + 1
    )
    path = tmp_path / "changed.parquet"
    changed.write_parquet(path)
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, store, str(path), str(largest_batch), seam],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(60, child.kill)
    watchdog.start()
    try:
        line = child.stdout.readline()
        assert line == "holding\n", child.stderr.read()
        with connect(store) as conn:
            holders = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND objid = %s",
                (batch_lock_key(largest_batch),),
            ).fetchone()[0]
        assert holders == 1
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=10) == -signal.SIGKILL
    finally:
        watchdog.cancel()
        child.stdout.close()
        child.stderr.close()

    assert batch_rows(store, largest_batch) == previous
    # The server let go of the dead writer's lock: the next run goes through.
    with connect(store) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.commit()
        counts = upsert_profile_batch(conn, largest_batch, changed)
    assert counts["rows_upserted"] == frame.height
    assert {r["model_version"] for r in batch_rows(store, largest_batch)} == {"from_the_killed_run"}


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_two_writers_of_one_batch_take_turns(pipeline_run, store: str, largest_batch: int) -> None:
    frame = batch_frame(pipeline_run, largest_batch)
    other_batch = (largest_batch + 1) % CUSTOMER_BATCHES
    other = batch_frame(pipeline_run, other_batch)
    times: dict[str, float] = {}
    seen: dict[str, bool] = {}
    first_holds = threading.Event()
    errors: list[BaseException] = []
    watcher = connect(store, autocommit=True)

    def second_is_waiting() -> bool:
        return (
            watcher.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                "AND objid = %s",
                (batch_lock_key(largest_batch),),
            ).fetchone()[0]
            == 1
        )

    def first_after_copy() -> None:
        first_holds.set()
        seen["second_waited"] = wait_for(second_is_waiting)
        # Another batch is not held up by this one's lock.
        with connect(store) as conn:
            conn.execute("SET lock_timeout = '5s'")
            conn.commit()
            upsert_profile_batch(conn, other_batch, other)
        times["other_batch_done"] = time.monotonic()

    def first_before_commit() -> None:
        times["first_commits"] = time.monotonic()

    def second_after_copy() -> None:
        times["second_locked"] = time.monotonic()

    def write(version: str, **seams) -> None:
        try:
            with connect(store) as conn:
                upsert_profile_batch(
                    conn, largest_batch, frame.with_columns(model_version=pl.lit(version)), **seams
                )
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    first = threading.Thread(
        target=write,
        args=("first",),
        kwargs={"after_copy": first_after_copy, "before_commit": first_before_commit},
    )
    second = threading.Thread(
        target=lambda: first_holds.wait(10) and write("second", after_copy=second_after_copy)
    )
    try:
        first.start()
        second.start()
        first.join(30)
        second.join(30)
    finally:
        watcher.close()
    assert not errors
    assert seen["second_waited"]
    assert times["other_batch_done"] < times["first_commits"] < times["second_locked"]
    with connect(store) as conn:
        written = conn.execute(
            "SELECT customer_batch, model_version, count(*) FROM customer_profiles GROUP BY 1, 2"
        ).fetchall()
    assert set(written) == {
        (largest_batch, "second", frame.height),
        (other_batch, other["model_version"][0], other.height),
    }


def test_rows_of_another_batch_are_refused(pipeline_run, store: str, largest_batch: int) -> None:
    frame = batch_frame(pipeline_run, largest_batch)
    with connect(store) as conn, pytest.raises(ValueError, match="another batch"):
        upsert_profile_batch(conn, (largest_batch + 1) % CUSTOMER_BATCHES, frame)
    assert batch_rows(store, largest_batch) == []


def test_profile_json_is_jsonb_that_containment_queries_use(pipeline_run) -> None:
    with connect(pipeline_run.database_url) as conn:
        axis, segment = conn.execute(
            "SELECT d.key, d.value FROM customer_profiles, "
            "jsonb_each_text(dominant_segments) AS d LIMIT 1"
        ).fetchone()
        by_containment = conn.execute(
            "SELECT count(*) FROM customer_profiles WHERE segment_memberships @> %s::jsonb",
            (json.dumps({axis: [segment]}),),
        ).fetchone()[0]
        by_dominant = conn.execute(
            "SELECT count(*) FROM customer_profiles WHERE dominant_segments ->> %s = %s",
            (axis, segment),
        ).fetchone()[0]
    assert by_containment >= by_dominant > 0
