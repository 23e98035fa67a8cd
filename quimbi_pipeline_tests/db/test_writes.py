"""Write helpers against a real server: rerunnable, atomic, and faithful to the values."""

import datetime as dt
import json
import threading
from collections.abc import Iterator

import polars as pl
import psycopg
import pytest

from quimbi_pipeline.db.connection import connect
from quimbi_pipeline.db.writes import (
    _as_copy_text,
    _needs_text_escapes,
    copy_frame,
    replace_rows,
    upsert_frame,
)

TABLE_DDL = """
CREATE TABLE items (
    item_id    text PRIMARY KEY,
    drop_id    text NOT NULL,
    quantity   bigint,
    price      double precision,
    note       text,
    seen_at    timestamp,
    seen_tz    timestamptz,
    seen_on    date,
    active     boolean,
    attributes jsonb,
    tags       jsonb,
    payload    bytea,
    created_at timestamptz NOT NULL DEFAULT now()
)
"""
TRICKY_STRINGS = [
    "",
    'O\'Brien said "hi"',
    "'); DROP TABLE items; --",
    "comma, separated\nand multi-line\r\nvalue",
    "\\.",
    "\\N",
    "NULL",
    "tab\tand backslash \\ and unicode é ✓",
]


@pytest.fixture
def conn(clean_db: str) -> Iterator[psycopg.Connection]:
    """A connection to a fresh database holding an empty ``items`` table."""
    with connect(clean_db) as connection:
        connection.execute(TABLE_DDL)
        connection.commit()
        yield connection


def _items(count: int, drop_id: str = "d1", price: float = 1.5) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(count)],
            "drop_id": [drop_id] * count,
            "quantity": list(range(count)),
            "price": [price] * count,
        }
    )


def _rows(conn: psycopg.Connection, columns: str = "item_id, drop_id, quantity, price") -> list:
    """Return the committed rows; the read's own transaction ends, so writes run top-level."""
    with conn.transaction():
        return conn.execute(f"SELECT {columns} FROM items ORDER BY item_id").fetchall()


def test_upsert_twice_leaves_the_same_table(conn: psycopg.Connection) -> None:
    frame = _items(5)
    assert upsert_frame(conn, "items", frame, ["item_id"]) == 5
    first = _rows(conn)
    assert upsert_frame(conn, "items", frame, ["item_id"]) == 5
    assert _rows(conn) == first
    assert len(first) == 5


def test_upsert_updates_every_non_key_column_and_inserts_new_keys(
    conn: psycopg.Connection,
) -> None:
    upsert_frame(conn, "items", _items(3, price=1.0), ["item_id"])
    changed = _items(4, drop_id="d2", price=2.0)
    assert upsert_frame(conn, "items", changed, ["item_id"], lock_key=42) == 4
    assert _rows(conn) == [(f"i{n}", "d2", n, 2.0) for n in range(4)]


def test_upsert_with_only_key_columns_inserts_missing_rows(conn: psycopg.Connection) -> None:
    conn.execute("CREATE TABLE labels (label text PRIMARY KEY)")
    upsert_frame(conn, "labels", pl.DataFrame({"label": ["a", "b"]}), ["label"])
    assert upsert_frame(conn, "labels", pl.DataFrame({"label": ["b", "c"]}), ["label"]) == 1
    assert conn.execute("SELECT label FROM labels ORDER BY label").fetchall() == [
        ("a",),
        ("b",),
        ("c",),
    ]


def test_bad_value_during_copy_leaves_previous_rows_intact(conn: psycopg.Connection) -> None:
    upsert_frame(conn, "items", _items(3), ["item_id"])
    before = _rows(conn)
    # A string in a bigint column fails inside COPY, after the rows before it were sent.
    bad = _items(3, drop_id="d2").with_columns(pl.Series("quantity", ["1", "2", "three"]))
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        upsert_frame(conn, "items", bad, ["item_id"])
    assert _rows(conn) == before
    with pytest.raises(psycopg.errors.InvalidTextRepresentation):
        replace_rows(conn, "items", bad, {"drop_id": "d2"})
    assert _rows(conn) == before


def test_writes_join_an_open_transaction_of_the_caller(conn: psycopg.Connection) -> None:
    upsert_frame(conn, "items", _items(1), ["item_id"])
    with pytest.raises(RuntimeError, match="later step failed"), conn.transaction():
        upsert_frame(conn, "items", _items(3, price=5.0), ["item_id"])
        d2 = _items(2, drop_id="d2").with_columns(pl.col("item_id") + "_d2")
        replace_rows(conn, "items", d2, {"drop_id": "d2"})
        assert len(_rows(conn)) == 5  # visible inside the caller's transaction
        raise RuntimeError("later step failed")
    assert _rows(conn) == [("i0", "d1", 0, 1.5)]


def test_duplicate_keys_are_refused_before_writing(conn: psycopg.Connection) -> None:
    frame = pl.concat([_items(2), _items(1)])
    with pytest.raises(ValueError, match="repeats key"):
        upsert_frame(conn, "items", frame, ["item_id"])
    assert _rows(conn) == []


def test_replace_rows_replaces_one_partition_only(conn: psycopg.Connection) -> None:
    upsert_frame(conn, "items", _items(3, drop_id="d1"), ["item_id"])
    other = _items(2, drop_id="d2").with_columns(pl.col("item_id") + "_other")
    upsert_frame(conn, "items", other, ["item_id"])
    new_d1 = _items(2, drop_id="d1", price=9.0).with_columns(pl.col("item_id") + "_new")
    assert replace_rows(conn, "items", new_d1, {"drop_id": "d1"}) == 2
    assert replace_rows(conn, "items", new_d1, {"drop_id": "d1"}) == 2  # rerun: same result
    rows = _rows(conn)
    assert [r for r in rows if r[1] == "d1"] == [("i0_new", "d1", 0, 9.0), ("i1_new", "d1", 1, 9.0)]
    assert [r[0] for r in rows if r[1] == "d2"] == ["i0_other", "i1_other"]


def test_replace_rows_fills_in_partition_columns_and_rejects_strays(
    conn: psycopg.Connection,
) -> None:
    frame = _items(2, drop_id="ignored").drop("drop_id")
    replace_rows(conn, "items", frame, {"drop_id": "d7"})
    assert {row[1] for row in _rows(conn)} == {"d7"}
    with pytest.raises(ValueError, match="drop_id other than 'd8'"):
        replace_rows(conn, "items", _items(2, drop_id="d9"), {"drop_id": "d8"})
    with pytest.raises(ValueError, match="non-empty where"):
        replace_rows(conn, "items", frame, {})


def test_empty_frame_in_replace_rows_empties_the_partition(conn: psycopg.Connection) -> None:
    upsert_frame(conn, "items", _items(3), ["item_id"])
    assert replace_rows(conn, "items", _items(0), {"drop_id": "d1"}) == 0
    assert _rows(conn) == []


def test_values_round_trip_verbatim(conn: psycopg.Connection) -> None:
    count = len(TRICKY_STRINGS)
    when = dt.datetime(2024, 2, 29, 23, 59, 58, 123456)
    attributes = pl.Series(
        "attributes",
        [{"bad_date": 3}, {"missing_customer": 1, "nested": {"a": [1, None]}}, None]
        + [{"quote": 'it\'s "x"'}] * (count - 3),
        dtype=pl.Object,
    )
    frame = pl.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(count)],
            "drop_id": ["d1"] * count,
            "note": TRICKY_STRINGS,
            "price": [float("inf"), float("-inf"), 0.1 + 0.2, None] + [1e-300] * (count - 4),
            "seen_at": [when, None] + [when] * (count - 2),
            "seen_on": [when.date(), None] + [when.date()] * (count - 2),
            "active": [True, False, None] + [True] * (count - 3),
            "tags": [["a", "b"], [], None] + [["'; --"]] * (count - 3),
            "payload": [b"\x00\x01'\\", None] + [b""] * (count - 2),
        }
    ).with_columns(attributes, pl.col("seen_at").dt.replace_time_zone("UTC").alias("seen_tz"))
    copied = 0
    with conn.transaction(), conn.cursor() as cur:
        copied = copy_frame(cur, "items", frame)
    assert copied == count
    rows = _rows(conn, "note, price, seen_at, seen_tz, seen_on, active, attributes, tags, payload")
    assert [row[0] for row in rows] == TRICKY_STRINGS
    assert [row[1] for row in rows][:4] == [float("inf"), float("-inf"), 0.1 + 0.2, None]
    assert rows[0][2:6] == (when, when.replace(tzinfo=dt.UTC), when.date(), True)
    assert rows[1][2:6] == (None, None, None, False)
    assert [row[6] for row in rows][:3] == [
        {"bad_date": 3},
        {"missing_customer": 1, "nested": {"a": [1, None]}},
        None,
    ]
    assert [row[7] for row in rows][:4] == [["a", "b"], [], None, ["'; --"]]
    assert [row[8] for row in rows][:3] == [b"\x00\x01'\\", None, b""]
    # The table survived the SQL-looking strings, and defaults filled the missing column.
    assert conn.execute("SELECT count(created_at) FROM items").fetchone() == (count,)


def test_frames_without_escapes_take_the_text_format_and_round_trip(
    conn: psycopg.Connection,
) -> None:
    notes = ["", 'O\'Brien said "hi"', "'); DROP TABLE items; --", "NULL", "unicode é ✓", None]
    count = len(notes)
    when = dt.datetime(2024, 2, 29, 23, 59, 58, 123456)
    frame = pl.DataFrame(
        {
            "item_id": [f"i{n}" for n in range(count)],
            "drop_id": ["d1"] * count,
            "note": notes,
            "price": [float("inf"), float("-inf"), 0.1 + 0.2, None, 1e-300, -0.0],
            "seen_at": [when, None] + [when] * (count - 2),
            "active": [True, False, None] + [True] * (count - 3),
            "tags": [["a", "b"], [], None] + [["q", "x y"]] * (count - 3),
            "attributes": ['{"a": "b \\" c"}', None] + ['{"k": [1, null]}'] * (count - 2),
        }
    )
    # The JSON text above holds a backslash: without that column the frame is escape-free.
    assert _needs_text_escapes(_as_copy_text(frame))
    frame = frame.drop("attributes")
    assert not _needs_text_escapes(_as_copy_text(frame))
    with conn.transaction(), conn.cursor() as cur:
        assert copy_frame(cur, "items", frame) == count
    rows = _rows(conn, "note, price, seen_at, active, tags")
    assert [row[0] for row in rows] == notes
    assert [row[1] for row in rows][:5] == [float("inf"), float("-inf"), 0.1 + 0.2, None, 1e-300]
    assert [row[2] for row in rows][:2] == [when, None]
    assert [row[3] for row in rows][:3] == [True, False, None]
    assert [row[4] for row in rows][:4] == [["a", "b"], [], None, ["q", "x y"]]


def test_lone_end_of_data_marker_is_stored_as_text(conn: psycopg.Connection) -> None:
    # In a one-column CSV a line holding only \. ends COPY on older servers unless quoted.
    conn.execute("CREATE TABLE notes (note text)")
    values = ["\\.", "after", "", None]
    with conn.transaction(), conn.cursor() as cur:
        copy_frame(cur, "notes", pl.DataFrame({"note": values}))
    stored = [row[0] for row in conn.execute("SELECT note FROM notes").fetchall()]
    assert stored == values


def test_struct_columns_become_jsonb_objects(conn: psycopg.Connection) -> None:
    frame = pl.DataFrame(
        {"item_id": ["a", "b"], "drop_id": ["d", "d"], "attributes": [{"k": 1, "s": "x"}, None]}
    )
    upsert_frame(conn, "items", frame, ["item_id"])
    stored = conn.execute("SELECT attributes FROM items ORDER BY item_id").fetchall()
    assert stored == [({"k": 1, "s": "x"},), (None,)]
    # JSON strings are stored as the JSON they hold, not as a JSON string.
    as_text = frame.with_columns(pl.Series("attributes", [json.dumps({"z": [1]}), None]))
    upsert_frame(conn, "items", as_text, ["item_id"])
    assert conn.execute("SELECT attributes FROM items WHERE item_id = 'a'").fetchone() == (
        {"z": [1]},
    )


def test_lock_key_serializes_writers_of_the_same_partition(
    conn: psycopg.Connection, clean_db: str
) -> None:
    # Another session holds the partition's lock; the upsert must wait for it.
    blocker = connect(clean_db)
    blocker.execute("SELECT pg_advisory_xact_lock(7)")
    done = threading.Event()

    def write() -> None:
        with connect(clean_db) as other:
            upsert_frame(other, "items", _items(1), ["item_id"], lock_key=7)
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert not done.wait(0.5)
    blocker.rollback()
    blocker.close()
    assert done.wait(10)
    writer.join()
    assert len(_rows(conn)) == 1
