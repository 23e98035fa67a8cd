"""Migrations: applied once each, in order, serialized across connections, history protected."""

import threading
from pathlib import Path

import psycopg
import pytest

from quimbi_pipeline.db.connection import connect
from quimbi_pipeline.db.migrations import (
    MigrationChecksumError,
    apply_migrations,
    find_migrations,
    sql_dir,
)


def _write_migrations(folder: Path) -> Path:
    """Write two small migrations; the first sleeps so concurrent migrators overlap."""
    folder.mkdir()
    # No IF NOT EXISTS: running either migration twice would fail loudly.
    (folder / "0001_first.sql").write_text(
        "SELECT pg_sleep(0.3);\nCREATE TABLE first_table (id int PRIMARY KEY);\n"
    )
    (folder / "0002_second.sql").write_text(
        "CREATE TABLE second_table (id int);\nINSERT INTO second_table VALUES (1);\n"
    )
    return folder


def _ledger(url: str) -> list[tuple[str, str]]:
    with connect(url) as conn:
        return conn.execute(
            "SELECT version, name FROM quimbi_schema_migrations ORDER BY version"
        ).fetchall()


def test_sql_dir_holds_the_project_migrations() -> None:
    labels = [migration.label for migration in find_migrations()]
    assert (sql_dir() / "migrations").is_dir()
    assert labels[0] == "0001_drops"
    assert labels == sorted(labels)


def test_project_migrations_apply_once(clean_db: str) -> None:
    first = apply_migrations(clean_db)
    second = apply_migrations(clean_db)
    assert first == [migration.label for migration in find_migrations()]
    assert second == []
    assert [version for version, _ in _ledger(clean_db)] == [m.version for m in find_migrations()]


def test_drops_ledger_rejects_unbalanced_row_counts(clean_db: str) -> None:
    apply_migrations(clean_db)
    insert = (
        "INSERT INTO drops (drop_id, kind, rows_read, rows_accepted, rows_rejected)"
        " VALUES (%s, 'orders', %s, %s, %s)"
    )
    with connect(clean_db) as conn:
        conn.execute(insert, ("balanced", 10, 8, 2))
        conn.commit()
        with pytest.raises(psycopg.errors.CheckViolation, match="drops_rows_balance"):
            conn.execute(insert, ("unbalanced", 10, 8, 1))


def test_applies_in_order_once_over_a_connection(clean_db: str, tmp_path: Path) -> None:
    folder = _write_migrations(tmp_path / "migrations")
    with connect(clean_db) as conn:
        assert apply_migrations(conn, folder) == ["0001_first", "0002_second"]
        assert apply_migrations(conn, folder) == []
        assert conn.execute("SELECT count(*) FROM second_table").fetchone() == (1,)
    assert _ledger(clean_db) == [("0001", "first"), ("0002", "second")]


def test_concurrent_migrators_apply_each_migration_once(clean_db: str, tmp_path: Path) -> None:
    folder = _write_migrations(tmp_path / "migrations")
    results: list[list[str]] = []
    failures: list[BaseException] = []
    start = threading.Barrier(2)

    def migrate() -> None:
        try:
            with connect(clean_db) as conn:
                start.wait()
                results.append(apply_migrations(conn, folder))
        except BaseException as error:  # surfaced below; a thread cannot fail the test itself
            failures.append(error)

    threads = [threading.Thread(target=migrate) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert sorted(label for result in results for label in result) == ["0001_first", "0002_second"]
    assert _ledger(clean_db) == [("0001", "first"), ("0002", "second")]


def test_edited_applied_migration_is_refused(clean_db: str, tmp_path: Path) -> None:
    folder = _write_migrations(tmp_path / "migrations")
    apply_migrations(clean_db, folder)
    (folder / "0001_first.sql").write_text("CREATE TABLE first_table (id bigint PRIMARY KEY);\n")
    (folder / "0003_third.sql").write_text("CREATE TABLE third_table (id int);\n")
    with pytest.raises(MigrationChecksumError, match=r"0001_first\.sql was edited"):
        apply_migrations(clean_db, folder)
    # Refused before anything ran: the new migration was not applied either.
    assert [version for version, _ in _ledger(clean_db)] == ["0001", "0002"]


def test_failing_migration_rolls_back_and_is_not_recorded(clean_db: str, tmp_path: Path) -> None:
    folder = _write_migrations(tmp_path / "migrations")
    (folder / "0003_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT no_such_function();\n"
    )
    with pytest.raises(psycopg.errors.UndefinedFunction):
        apply_migrations(clean_db, folder)
    assert [version for version, _ in _ledger(clean_db)] == ["0001", "0002"]
    with connect(clean_db) as conn:
        assert conn.execute("SELECT to_regclass('half_done')").fetchone() == (None,)


def test_misnamed_migration_file_is_an_error(tmp_path: Path) -> None:
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "1_first.sql").write_text("SELECT 1;")
    with pytest.raises(ValueError, match="NNNN_lower_snake_name"):
        find_migrations(folder)
