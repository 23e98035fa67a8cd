"""raw_orders and orders through dg.materialize, against a real PostgreSQL."""

import json
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from quimbi_pipeline.db.connection import connect
from quimbi_pipeline.defs.ingestion.assets import orders, raw_orders
from quimbi_pipeline.defs.resources import LakeResource, PostgresResource
from quimbi_pipeline.drops import Drop, DropRegistry
from quimbi_pipeline.home import QuimbiHome
from quimbi_pipeline_tests.drop_files import order_row, write_orders

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"

# Three good lines, then one line per rejection reason (line numbers 2..8 in the file).
JANUARY = [
    order_row("1001", "C1", "2024-01-03 10:15:00", "12.50"),
    order_row("1002", "C2", "2024-01-04", "20.00"),
    order_row("1003", "C1", "2024-01-20 18:00:00", "7.25"),
    order_row("1004", "", "2024-01-05", "9.00"),
    order_row("1005", "C3", "not a date", "9.00"),
    order_row("1006", "C3", "2024-01-06", "twelve"),
    order_row("1002", "C2", "2024-01-04", "20.00"),
]
JANUARY_REJECTED = {
    "no_customer": 1,
    "malformed_date": 1,
    "non_numeric_amount": 1,
    "duplicate_row": 1,
}


@pytest.fixture
def resources(home: QuimbiHome, clean_db: str) -> dict:
    return {"lake": LakeResource(home=str(home.root)), "postgres": PostgresResource(url=clean_db)}


def land(instance: dg.DagsterInstance, home: QuimbiHome, path: Path) -> Drop:
    """Registers an export and adds its partition, as the sensor or `run` would."""
    drop, _ = DropRegistry(home).land(path)
    instance.add_dynamic_partitions("order_drops", [drop.drop_id])
    return drop


def ingest(instance, resources, first: str, last: str | None = None, **kwargs):
    tags = {RANGE_START: first, RANGE_END: last} if last else None
    return dg.materialize(
        [raw_orders],
        instance=instance,
        resources=resources,
        partition_key=None if last else first,
        tags=tags,
        **kwargs,
    )


def metadata_by_partition(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, dict]:
    return {
        m.partition: {key: value.value for key, value in m.metadata.items()}
        for m in result.asset_materializations_for_node(asset)
    }


def metadata_of(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    [metadata] = metadata_by_partition(result, asset).values()
    return metadata


def lake_files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_raw_orders_accounts_for_every_row(instance, home, resources, clean_db, tmp_path) -> None:
    drop = land(instance, home, write_orders(tmp_path / "orders_2024_01.csv", JANUARY))

    result = ingest(instance, resources, drop.drop_id)

    assert result.success
    meta = metadata_of(result, "raw_orders")
    assert meta["rows_read"] == len(JANUARY) == meta["rows_accepted"] + meta["rows_rejected"]
    assert (meta["rows_accepted"], meta["rows_rejected"]) == (3, 4)
    assert meta["rejected_by_reason"] == JANUARY_REJECTED
    assert (meta["customers"], meta["format"], meta["drops"]) == (2, "shopify", 1)
    assert (meta["first"], meta["last"]) == ("2024-01-03 10:15:00", "2024-01-20 18:00:00")
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "rows_accounted_for" and check.passed

    rejected = pl.read_parquet(home.raw_dir("orders", drop.drop_id) / "rejected" / "*.parquet")
    assert sorted(zip(rejected["source_line"], rejected["reason"], strict=True)) == [
        (5, "no_customer"),
        (6, "malformed_date"),
        (7, "non_numeric_amount"),
        (8, "duplicate_row"),
    ]

    # The ledger users query with SQL says the same.
    with connect(clean_db) as conn:
        rows = conn.execute(
            "SELECT drop_id, kind, layout, file_name, sha256, rows_read, rows_accepted, "
            "rows_rejected, rejected_by_reason, customers, first_at::text, last_at::text "
            "FROM drops"
        ).fetchall()
    assert rows == [
        (
            drop.drop_id,
            "orders",
            "shopify",
            "orders_2024_01.csv",
            drop.sha256,
            7,
            3,
            4,
            JANUARY_REJECTED,
            2,
            "2024-01-03 10:15:00",
            "2024-01-20 18:00:00",
        )
    ]


def test_rerun_rebuilds_the_same_lake_files(instance, home, resources, clean_db, tmp_path) -> None:
    drop = land(instance, home, write_orders(tmp_path / "orders_2024_01.csv", JANUARY))
    folder = home.raw_dir("orders", drop.drop_id)
    ingest(instance, resources, drop.drop_id)
    before = lake_files(folder)

    assert ingest(instance, resources, drop.drop_id).success

    after = lake_files(folder)
    assert after.keys() == before.keys()
    assert "manifest.json" in before
    assert any(name.startswith("accepted/") for name in before)
    for name in before:
        if name == "manifest.json":
            # The manifest records how long the ingest took; everything else is identical.
            first, second = (json.loads(files[name]) for files in (before, after))
            first.pop("seconds"), second.pop("seconds")
            assert first == second
        else:
            assert after[name] == before[name], name
    with connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM drops").fetchone() == (1,)


def test_one_run_ingests_a_range_of_drops(instance, home, resources, tmp_path) -> None:
    january = land(instance, home, write_orders(tmp_path / "orders_2024_01.csv", JANUARY))
    february = land(
        instance,
        home,
        write_orders(tmp_path / "orders_2024_02.csv", [order_row("2001", "C4", "2024-02-01")]),
    )

    result = ingest(instance, resources, january.drop_id, february.drop_id)

    # One materialization per drop, each with that drop's own counts.
    meta = metadata_by_partition(result, "raw_orders")
    assert set(meta) == {january.drop_id, february.drop_id}
    counts = {
        key: (m["drops"], m["rows_read"], m["rows_accepted"], m["rows_rejected"], m["customers"])
        for key, m in meta.items()
    }
    assert counts == {january.drop_id: (1, 7, 3, 4, 2), february.drop_id: (1, 1, 1, 0, 1)}
    assert meta[february.drop_id]["rejected_by_reason"] == {}
    [check] = result.get_asset_check_evaluations()
    assert check.passed
    totals = {k: v.value for k, v in check.metadata.items()}
    assert totals == {"drops": 2, "rows_read": 8, "rows_accepted": 4, "rows_rejected": 4}
    for drop in (january, february):
        assert (home.raw_dir("orders", drop.drop_id) / "manifest.json").exists()


def test_orders_removes_lines_repeated_by_overlapping_drops(
    instance, home, resources, tmp_path
) -> None:
    lines = [order_row(f"{1000 + i}", f"C{i % 3}", f"2024-01-{i + 1:02d}") for i in range(6)]
    # Two exports that overlap on lines 2..3: the first holds 0..3, the second 2..5.
    first = land(instance, home, write_orders(tmp_path / "export_a.csv", lines[:4]))
    second = land(instance, home, write_orders(tmp_path / "export_b.csv", lines[2:]))
    # Registered but not ingested yet: not part of the union.
    land(
        instance,
        home,
        write_orders(tmp_path / "export_c.csv", [order_row("9", "C9", "2024-03-01")]),
    )
    ingest(instance, resources, first.drop_id, second.drop_id)

    result = dg.materialize([orders], instance=instance, resources={"lake": resources["lake"]})

    meta = metadata_of(result, "orders")
    assert (meta["drops"], meta["rows"], meta["duplicates_removed"]) == (2, 6, 2)
    assert meta["customers"] == 3
    union = pl.read_parquet(home.asset_dir("orders") / "orders.parquet")
    assert sorted(union["order_id"]) == [f"{1000 + i}" for i in range(6)]
    # The repeated lines are attributed to the drop that brought them first.
    shared = union.filter(pl.col("order_id").is_in(["1002", "1003"]))
    assert shared["drop_id"].to_list() == [first.drop_id] * 2


def test_a_drop_whose_file_changed_fails_naming_the_file(
    instance, home, resources, clean_db, tmp_path
) -> None:
    drop = land(instance, home, write_orders(tmp_path / "orders_2024_01.csv", JANUARY))
    landed = DropRegistry(home).path_of(drop)
    write_orders(landed, [order_row("9", "C9", "2024-01-09")])

    result = ingest(instance, resources, drop.drop_id, raise_on_error=False)

    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.user_failure_data.description
    assert str(landed) in message
    assert "changed since it was registered" in message
    assert not home.raw_dir("orders", drop.drop_id).exists()
    with connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM drops").fetchone() == (0,)


def test_a_range_run_fails_on_its_first_bad_drop_in_partition_order(
    instance, home, resources, clean_db, tmp_path
) -> None:
    # Drops are ingested two at a time; the failure reported must still be the first one in
    # partition order, whichever thread finishes first.
    drops = [
        land(
            instance,
            home,
            write_orders(
                tmp_path / f"orders_{i}.csv",
                [order_row(f"{i}00{j}", f"C{j}", f"2024-0{i + 1}-0{j + 1}") for j in range(3)],
            ),
        )
        for i in range(4)
    ]
    for bad in (drops[1], drops[3]):
        write_orders(DropRegistry(home).path_of(bad), [order_row("9", "C9", "2024-01-09")])

    result = ingest(instance, resources, drops[0].drop_id, drops[-1].drop_id, raise_on_error=False)

    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.user_failure_data.description
    assert str(DropRegistry(home).path_of(drops[1])) in message
    assert "changed since it was registered" in message
    assert result.asset_materializations_for_node("raw_orders") == []
    with connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM drops").fetchone() == (0,)
