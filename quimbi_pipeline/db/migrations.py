"""Apply numbered SQL migrations in ``sql/migrations`` once each, in order, in parallel safely."""

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.pq import TransactionStatus

from quimbi_pipeline.db.connection import connect
from quimbi_pipeline.db.sql_files import sql_dir, statement

__all__ = ["Migration", "MigrationChecksumError", "apply_migrations", "find_migrations", "sql_dir"]

# One advisory lock key for every migrator of every database ("quimbi" in ASCII).
MIGRATIONS_LOCK_KEY = 0x7175696D6269
_LEDGER_SQL = "db/schema_migrations.sql"
_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


class MigrationChecksumError(RuntimeError):
    """An already applied migration file was edited afterwards."""


@dataclass(frozen=True)
class Migration:
    """One ``NNNN_name.sql`` file."""

    version: str
    name: str
    path: Path
    sql: str
    checksum: str

    @property
    def label(self) -> str:
        """Return the file name without its suffix, e.g. ``0001_drops``."""
        return f"{self.version}_{self.name}"


def find_migrations(migrations_dir: Path | None = None) -> list[Migration]:
    """Return the migrations in ``migrations_dir`` (default ``sql/migrations``) in version order."""
    folder = migrations_dir if migrations_dir is not None else sql_dir() / "migrations"
    migrations: dict[str, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise ValueError(f"migration file {path.name!r} is not named NNNN_lower_snake_name.sql")
        if match["version"] in migrations:
            raise ValueError(f"two migration files share version {match['version']} in {folder}")
        text = path.read_text(encoding="utf-8")
        # Line endings are normalized so a Windows checkout does not look like an edit.
        checksum = hashlib.sha256(text.replace("\r\n", "\n").encode()).hexdigest()
        migrations[match["version"]] = Migration(
            match["version"], match["name"], path, text, checksum
        )
    return list(migrations.values())


def apply_migrations(
    conn_or_url: psycopg.Connection | str, migrations_dir: Path | None = None
) -> list[str]:
    """Apply pending migrations, each in its own transaction, and return their labels.

    Concurrent callers (other threads or processes) are serialized by an advisory lock, so each
    migration runs exactly once. Raises ``MigrationChecksumError`` when a migration that was
    already applied no longer matches its file.
    """
    migrations = find_migrations(migrations_dir)
    if isinstance(conn_or_url, str):
        with connect(conn_or_url) as conn:
            return _apply(conn, migrations)
    return _apply(conn_or_url, migrations)


def _apply(conn: psycopg.Connection, migrations: list[Migration]) -> list[str]:
    """Apply ``migrations`` over ``conn``, which must not be inside a transaction."""
    if conn.info.transaction_status != TransactionStatus.IDLE:
        # Inside a caller's transaction each migration would only be a savepoint, and the
        # advisory lock would be held until the caller commits.
        raise RuntimeError("apply_migrations needs a connection that is not inside a transaction")
    with conn.transaction(), conn.cursor() as cur:
        _lock(cur)
        cur.execute(statement(_LEDGER_SQL, "create_ledger"))
        applied = _applied_checksums(cur)
    # Refuse before changing anything when history was rewritten.
    for migration in migrations:
        _verify(migration, applied)

    done: list[str] = []
    for migration in migrations:
        if migration.version in applied:
            continue
        with conn.transaction(), conn.cursor() as cur:
            _lock(cur)
            # Another migrator may have applied it while this one waited for the lock.
            applied = _applied_checksums(cur)
            if migration.version in applied:
                _verify(migration, applied)
                continue
            cur.execute(migration.sql.encode())
            cur.execute(
                statement(_LEDGER_SQL, "record"),
                {"version": migration.version, "name": migration.name,
                 "checksum": migration.checksum},
            )
        done.append(migration.label)
    return done


def _lock(cur: psycopg.Cursor) -> None:
    """Take the migrations advisory lock until the end of the current transaction."""
    cur.execute(statement(_LEDGER_SQL, "lock"), {"lock_key": MIGRATIONS_LOCK_KEY})


def _applied_checksums(cur: psycopg.Cursor) -> dict[str, str]:
    """Return the recorded checksum of each applied version."""
    cur.execute(statement(_LEDGER_SQL, "applied"))
    return {version: checksum for version, _name, checksum in cur.fetchall()}


def _verify(migration: Migration, applied: dict[str, str]) -> None:
    """Raise when ``migration`` was applied from a file with different content."""
    recorded = applied.get(migration.version)
    if recorded is not None and recorded != migration.checksum:
        raise MigrationChecksumError(
            f"migration {migration.path.name} was edited after it was applied "
            f"(recorded sha256 {recorded[:12]}, file now {migration.checksum[:12]}); "
            "restore the file and put the change in a new migration"
        )
