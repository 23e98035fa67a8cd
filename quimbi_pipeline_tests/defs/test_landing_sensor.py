"""The landing sensor, evaluated with build_sensor_context on a temporary home folder."""

import logging
import os
from pathlib import Path

import dagster as dg

from quimbi_pipeline.defs.ingestion.sensors import landing_sensor
from quimbi_pipeline.defs.resources import LakeResource
from quimbi_pipeline.drops import DropRegistry
from quimbi_pipeline.home import QuimbiHome
from quimbi_pipeline_tests.drop_files import order_row, ticket_row, write_orders, write_tickets


def evaluate(
    instance: dg.DagsterInstance,
    home: QuimbiHome,
    cursor: str | None = None,
    log_handler: logging.Handler | None = None,
) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources={"lake": LakeResource(home=str(home.root))}
    ) as context:
        if log_handler is not None:
            context.log.addHandler(log_handler)
        return landing_sensor(context)


def apply_partition_requests(instance: dg.DagsterInstance, result: dg.SensorResult) -> None:
    """What the daemon does with a tick's dynamic-partition requests."""
    for request in result.dynamic_partitions_requests:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)


def land_first_drops(home: QuimbiHome) -> tuple[Path, Path]:
    orders = write_orders(
        home.landing / "orders_2024_01.csv",
        [order_row("1001", "C1", "2024-01-03"), order_row("1002", "C2", "2024-01-04")],
    )
    tickets = write_tickets(
        home.landing / "tickets 2024-01.csv", [ticket_row("T1", "C1", "2024-01-05")]
    )
    return orders, tickets


def skip_message(result: dg.SensorResult) -> str:
    assert result.skip_reason is not None
    return result.skip_reason.skip_message


def test_new_drops_are_added_as_partitions_and_requested(instance, home) -> None:
    land_first_drops(home)
    result = evaluate(instance, home)

    adds = {r.partitions_def_name: r.partition_keys for r in result.dynamic_partitions_requests}
    # The ticket file's space is sanitised: partition keys stay readable and safe.
    assert adds == {"order_drops": ["orders_2024_01.csv"], "ticket_drops": ["tickets_2024-01.csv"]}
    requests = {r.partition_key: r for r in result.run_requests}
    assert set(requests) == {"orders_2024_01.csv", "tickets_2024-01.csv"}
    assert requests["orders_2024_01.csv"].asset_selection == [dg.AssetKey("raw_orders")]
    assert requests["tickets_2024-01.csv"].asset_selection == [dg.AssetKey("raw_tickets")]
    registry = DropRegistry(home)
    for key, request in requests.items():
        assert request.run_key == f"{key}:{registry.require(key).sha256[:16]}"
    assert result.skip_reason is None


def test_second_evaluation_with_the_cursor_requests_nothing(instance, home) -> None:
    land_first_drops(home)
    first = evaluate(instance, home)
    apply_partition_requests(instance, first)

    second = evaluate(instance, home, first.cursor)
    assert second.run_requests == []
    assert second.dynamic_partitions_requests == []
    assert "no new files" in skip_message(second)


def test_lost_cursor_does_not_request_registered_partitions_again(instance, home) -> None:
    orders, _ = land_first_drops(home)
    apply_partition_requests(instance, evaluate(instance, home))
    # Touched but unchanged: hashed again, recognised, not re-requested.
    os.utime(orders, ns=(1, 1))

    again = evaluate(instance, home, cursor=None)
    assert again.run_requests == []
    assert again.dynamic_partitions_requests == []


def test_registered_drop_whose_partition_is_missing_is_requested_again(instance, home) -> None:
    # The tick registered the drop, but its result never reached the instance.
    land_first_drops(home)
    first = evaluate(instance, home)

    retry = evaluate(instance, home, cursor=None)
    assert [r.run_key for r in retry.run_requests] == [r.run_key for r in first.run_requests]


def test_changed_content_under_a_registered_name_is_refused(instance, home, caplog) -> None:
    orders, _ = land_first_drops(home)
    first = evaluate(instance, home)
    apply_partition_requests(instance, first)
    registered = DropRegistry(home).require("orders_2024_01.csv")

    write_orders(orders, [order_row("2001", "C9", "2024-02-01")])
    result = evaluate(instance, home, first.cursor, log_handler=caplog.handler)

    assert result.run_requests == []
    assert result.dynamic_partitions_requests == []
    message = skip_message(result)
    assert str(orders) in message
    assert "refused" in message
    assert any(str(orders) in r.getMessage() and r.levelname == "ERROR" for r in caplog.records)
    # Never merged: the drop still stands for the content first registered.
    assert DropRegistry(home).require("orders_2024_01.csv") == registered
    assert [d.drop_id for d in DropRegistry(home).all("orders")] == ["orders_2024_01.csv"]


def test_refusal_does_not_hide_a_new_drop_in_the_same_tick(instance, home) -> None:
    orders, _ = land_first_drops(home)
    first = evaluate(instance, home)
    apply_partition_requests(instance, first)
    write_orders(orders, [order_row("2001", "C9", "2024-02-01")])
    write_orders(home.landing / "orders_2024_02.csv", [order_row("3001", "C3", "2024-02-02")])

    result = evaluate(instance, home, first.cursor)
    assert [r.partition_key for r in result.run_requests] == ["orders_2024_02.csv"]


def test_hidden_and_partial_files_are_ignored(instance, home) -> None:
    rows = [order_row("1001", "C1", "2024-01-03")]
    for name in (".orders_2024_03.csv", "orders_2024_03.csv.part", "orders_2024_03.csv.tmp"):
        write_orders(home.landing / name, rows)
    (home.landing / "subfolder").mkdir()

    result = evaluate(instance, home)
    assert result.run_requests == []
    assert result.dynamic_partitions_requests == []
    assert "no new files" in skip_message(result)
    assert DropRegistry(home).all() == []


def test_unknown_layout_is_refused_naming_the_file(instance, home) -> None:
    weird = home.landing / "inventory.csv"
    weird.write_text("warehouse,shelf,count\nA,1,3\n")

    result = evaluate(instance, home)
    assert result.run_requests == []
    message = skip_message(result)
    assert str(weird) in message
    assert "unknown layout" in message
    assert DropRegistry(home).all() == []


def test_unreadable_name_does_not_stop_the_sensor(instance, home) -> None:
    # A name with no character a partition key may hold, and one Dagster would read as a range.
    rows = [order_row("1001", "C1", "2024-01-03")]
    write_orders(home.landing / "заказы", rows)
    write_orders(home.landing / "orders...2024.csv", [order_row("1002", "C2", "2024-01-04")])

    result = evaluate(instance, home)
    keys = [r.partition_key for r in result.run_requests]
    assert len(keys) == 2
    assert all(key and "..." not in key for key in keys)
    apply_partition_requests(instance, result)
    assert sorted(instance.get_dynamic_partitions("order_drops")) == sorted(keys)
