"""The drop registry: landing, registration, conflicts and drop ids."""

import re
from pathlib import Path

import pytest

from quimbi_pipeline.core.ingest import IngestError, file_sha256
from quimbi_pipeline.drops import DropConflict, DropRegistry, drop_id_for, is_candidate
from quimbi_pipeline.home import QuimbiHome
from quimbi_pipeline_tests.drop_files import (
    order_row,
    ticket_row,
    write_orders,
    write_tickets,
)


@pytest.fixture
def registry(tmp_path: Path) -> DropRegistry:
    return DropRegistry(QuimbiHome.at(tmp_path / "home"))


@pytest.fixture
def export(tmp_path: Path) -> Path:
    return write_orders(
        tmp_path / "exports" / "orders_2024_01.csv", [order_row("1", "C1", "2024-01-02")]
    )


@pytest.mark.parametrize(
    ("file_name", "drop_id"),
    [
        ("orders_2024_01.csv", "orders_2024_01.csv"),
        ("tickets 2024-01.csv", "tickets_2024-01.csv"),
        ("Orders, Jan [final].csv", "Orders_Jan_final_.csv"),
        ("orders...2024.csv", "orders.2024.csv"),
        ("_orders_.csv.", "orders_.csv"),
        ("заказы.csv", "csv"),
    ],
)
def test_drop_ids_are_readable_partition_keys(file_name: str, drop_id: str) -> None:
    assert drop_id_for(file_name) == drop_id


def test_a_name_without_usable_characters_gets_a_stable_hashed_id() -> None:
    first, second = drop_id_for("заказы"), drop_id_for("отчёты")
    assert re.fullmatch(r"drop_[0-9a-f]{12}", first)
    assert first == drop_id_for("заказы")
    assert first != second


@pytest.mark.parametrize(
    ("name", "candidate"),
    [
        ("orders.csv", True),
        (".orders.csv", False),
        ("orders.csv.part", False),
        ("orders.csv.tmp", False),
        ("orders.csv.crdownload", False),
    ],
)
def test_only_finished_visible_files_are_candidates(tmp_path, name, candidate) -> None:
    path = tmp_path / name
    path.write_text("x")
    assert is_candidate(path) is candidate


def test_land_copies_and_registers_the_export(registry, export) -> None:
    drop, is_new = registry.land(export)

    assert is_new
    landed = registry.home.landing / export.name
    assert landed.read_bytes() == export.read_bytes()
    assert (drop.drop_id, drop.kind, drop.layout) == ("orders_2024_01.csv", "orders", "shopify")
    assert drop.sha256 == file_sha256(export)
    assert drop.size == export.stat().st_size
    assert registry.require(drop.drop_id) == drop
    assert registry.path_of(drop) == landed


def test_landing_the_same_export_again_is_idempotent(registry, export) -> None:
    first, _ = registry.land(export)
    again, is_new = registry.land(export)
    # Landing the file that already lies in the landing folder is the same drop too.
    in_place, in_place_new = registry.land(registry.home.landing / export.name)

    assert (again, is_new) == (first, False)
    assert (in_place, in_place_new) == (first, False)
    assert registry.all() == [first]


def test_a_different_export_under_a_landed_name_is_refused(registry, export, tmp_path) -> None:
    first, _ = registry.land(export)
    other = write_orders(tmp_path / "other" / export.name, [order_row("9", "C9", "2024-01-09")])

    with pytest.raises(DropConflict, match=re.escape(str(other))):
        registry.land(other)

    assert registry.all() == [first]
    assert file_sha256(registry.home.landing / export.name) == first.sha256


def test_changed_content_in_the_landing_folder_is_refused(registry, export) -> None:
    first, _ = registry.land(export)
    landed = registry.path_of(first)
    write_orders(landed, [order_row("9", "C9", "2024-01-09")])

    with pytest.raises(DropConflict, match="never silently merged") as refused:
        registry.register_landed(landed.name)
    assert str(landed) in str(refused.value)
    assert registry.require(first.drop_id) == first


def test_two_names_with_the_same_drop_id_are_refused(registry, tmp_path) -> None:
    rows = [order_row("1", "C1", "2024-01-02")]
    registry.land(write_orders(tmp_path / "a" / "orders 2024.csv", rows))
    clash = write_orders(tmp_path / "b" / "orders_2024.csv", rows)

    with pytest.raises(
        DropConflict, match=re.escape("already taken by the file 'orders 2024.csv'")
    ):
        registry.land(clash)
    assert [d.file_name for d in registry.all()] == ["orders 2024.csv"]


def test_ticket_exports_are_ticket_drops(registry, tmp_path) -> None:
    path = write_tickets(tmp_path / "tickets_2024_01.csv", [ticket_row("T1", "C1", "2024-01-02")])
    drop, _ = registry.land(path)
    assert (drop.kind, drop.layout) == ("tickets", "tickets")
    assert registry.all("orders") == []
    assert registry.all("tickets") == [drop]


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "empty file"),
        ("warehouse,shelf,count\nA,1,3\n", "unknown layout"),
        ("OrderID,Customer_ID,Date,QTY\n1,C1,2024-01-02,1\n", "missing required column 'Sales'"),
    ],
)
def test_an_unreadable_export_is_refused_before_it_is_landed(
    registry, tmp_path, content, problem
) -> None:
    bad = tmp_path / "exports" / "orders_2024_02.csv"
    bad.parent.mkdir(parents=True)
    bad.write_text(content)

    with pytest.raises(IngestError, match=re.escape(problem)) as refused:
        registry.land(bad)
    assert str(refused.value).startswith(f"{bad}:1: ")
    assert registry.all() == []
    assert not (registry.home.landing / bad.name).exists()

    # The corrected export under the same name is then accepted.
    write_orders(bad, [order_row("1", "C1", "2024-02-02")])
    drop, is_new = registry.land(bad)
    assert is_new and drop.sha256 == file_sha256(bad)


def test_a_different_file_placed_in_landing_by_hand_is_never_overwritten(registry, export) -> None:
    by_hand = registry.home.landing / export.name
    write_orders(by_hand, [order_row("7", "C7", "2024-01-07")])
    kept = by_hand.read_bytes()

    with pytest.raises(DropConflict, match=re.escape(str(export))):
        registry.land(export)
    assert by_hand.read_bytes() == kept
    assert registry.all() == []


def test_require_names_the_landing_folder_for_an_unknown_drop(registry) -> None:
    with pytest.raises(KeyError, match=re.escape(str(registry.home.landing))):
        registry.require("nope.csv")
