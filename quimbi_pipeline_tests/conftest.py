"""Shared database fixtures: one embedded server per session, and a fresh database per test.

``database_url`` is parametrized over the servers to test against: always the embedded one,
plus the server in ``QUIMBI_TEST_EXTERNAL_DATABASE_URL`` when that variable is set. A test that
takes ``clean_db`` (or ``database_url``) therefore runs once per server.
"""

import os
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from psycopg import sql

from quimbi_pipeline.core.generator import GenerateReport, generate_shop
from quimbi_pipeline.db.connection import connect
from quimbi_pipeline.db.embedded import POSTGRES_VERSION, EmbeddedPostgres
from quimbi_pipeline.db.urls import with_database
from quimbi_pipeline.home import QuimbiHome

EXTERNAL_URL_ENV = "QUIMBI_TEST_EXTERNAL_DATABASE_URL"
# Read at collection time on purpose: without the variable there is one param, none skipped.
_SERVERS = ["embedded", *(["external"] if os.environ.get(EXTERNAL_URL_ENV) else [])]
# Test databases are named test_<unix time>_<random>; older ones were left by a killed session.
_TEST_DB = re.compile(r"^test_(?P<created>\d+)_[0-9a-f]{8}$")
_STALE_AFTER_SECONDS = 3600


def _session_pgdata() -> Path:
    """Return a data dir that outlives the session, so later sessions restart instead of initdb."""
    root = Path(tempfile.gettempdir()) / f"quimbi_pipeline_tests-{os.getuid()}"
    return root / f"pgdata-{POSTGRES_VERSION}"


@pytest.fixture(scope="session")
def embedded_pg() -> Iterator[EmbeddedPostgres]:
    """One embedded server for the whole session (shared with concurrent sessions), then stop."""
    pgdata = _session_pgdata()
    server = EmbeddedPostgres(pgdata)
    try:
        server.start()
    except Exception as error:
        # Not deleted automatically: a concurrent session may be using the same server.
        raise RuntimeError(
            f"the test server in {pgdata} did not start; it holds only test data, so if no other "
            "test session is running, delete that folder and the next session rebuilds it"
        ) from error
    with connect(server.url("postgres"), autocommit=True) as conn:
        # Durability is worthless for throwaway test data; dropping it makes DDL much faster.
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = off").format(sql.Identifier(setting)))
        conn.execute("SELECT pg_reload_conf()")
    yield server
    server.stop()


@pytest.fixture(scope="session", params=_SERVERS)
def database_url(request: pytest.FixtureRequest) -> str:
    """URL of a database on one of the servers under test (shared by tests: prefer clean_db)."""
    if request.param == "embedded":
        embedded: EmbeddedPostgres = request.getfixturevalue("embedded_pg")
        return embedded.url()
    return os.environ[EXTERNAL_URL_ENV]


class _TestDatabases:
    """Creates each test's database one test ahead, and drops used ones, in a background thread.

    CREATE DATABASE copies the template (tenths of a second); done ahead, a test rarely waits.
    """

    def __init__(self, server_url: str) -> None:
        self._server_url = server_url
        # One thread owns the admin connection, so statements on it never interleave.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-databases")
        self._conn = self._worker.submit(connect, server_url, autocommit=True).result()
        self._worker.submit(self._drop_stale).result()
        self._drops: list[Future[None]] = []
        self._next = self._worker.submit(self._create)

    def take(self) -> tuple[str, str]:
        """Return the name and URL of a new empty database."""
        name = self._next.result()
        self._next = self._worker.submit(self._create)
        return name, with_database(self._server_url, name)

    def release(self, name: str) -> None:
        """Drop ``name`` in the background."""
        self._drops.append(self._worker.submit(self._drop, name))

    def close(self) -> None:
        """Drop the spare database, wait for every drop, and close the connection."""
        self.release(self._next.result())
        self._worker.shutdown(wait=True)
        self._conn.close()
        for drop in self._drops:
            drop.result()  # a failed drop fails the session instead of passing unseen

    def _create(self) -> str:
        name = f"test_{int(time.time())}_{uuid.uuid4().hex[:8]}"
        self._conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name

    def _drop(self, name: str) -> None:
        # FORCE ends connections a failed test left open.
        self._conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )

    def _drop_stale(self) -> None:
        """Drop test databases that a killed session left behind more than an hour ago."""
        rows = self._conn.execute("SELECT datname FROM pg_database").fetchall()
        for (name,) in rows:
            match = _TEST_DB.match(name)
            if match and time.time() - int(match["created"]) > _STALE_AFTER_SECONDS:
                self._drop(name)


@pytest.fixture(scope="session")
def _test_databases(database_url: str) -> Iterator[_TestDatabases]:
    """The test-database factory of the server under test."""
    databases = _TestDatabases(database_url)
    yield databases
    databases.close()


@pytest.fixture
def clean_db(_test_databases: _TestDatabases) -> Iterator[str]:
    """Yield the URL of a new empty database on the server under test; drop it afterwards."""
    name, url = _test_databases.take()
    yield url
    _test_databases.release(name)


@pytest.fixture(scope="session")
def small_shop(tmp_path_factory: pytest.TempPathFactory) -> GenerateReport:
    """A seeded synthetic shop: 400 customers over 12 months (monthly order and ticket drops)."""
    return generate_shop(400, tmp_path_factory.mktemp("small_shop"), seed=3, months=12)


@dataclass(frozen=True)
class PipelineRun:
    """The outcome of one full headless pipeline run: where its state is and what it said."""

    home: QuimbiHome
    database_url: str
    summary: dict
    shop: GenerateReport


@pytest.fixture(scope="session")
def pipeline_run(
    small_shop: GenerateReport,
    embedded_pg: EmbeddedPostgres,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[PipelineRun]:
    """The whole pipeline run once on ``small_shop`` into its own database (read-only for tests).

    Tests that change state must use their own home and database instead.
    """
    from quimbi_pipeline.runner import PipelineRunner
    from quimbi_pipeline.runtime import runtime
    from quimbi_pipeline.summary import summary_dict

    name = f"test_{int(time.time())}_{uuid.uuid4().hex[:8]}"
    admin_url = embedded_pg.url("postgres")
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = embedded_pg.url(name)
    home = QuimbiHome.at(tmp_path_factory.mktemp("pipeline_home")).ensure()
    with runtime(home, url) as rt:
        runner = PipelineRunner(rt, log=lambda message: None)
        summary = summary_dict(rt, runner.run([*small_shop.order_files, *small_shop.ticket_files]))
    yield PipelineRun(home, url, summary, small_shop)
    with connect(admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
