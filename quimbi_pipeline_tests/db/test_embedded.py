"""The embedded server starts, restarts, is shared between processes and never outlives them."""

import json
import os
import selectors
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from quimbi_pipeline.db.connection import connect
from quimbi_pipeline.db.data_dir import RELOCATED_ROOT
from quimbi_pipeline.db.embedded import EmbeddedPostgres, prune_dead_pids
from quimbi_pipeline.db.exit_signals import exit_handler

REPO_ROOT = Path(__file__).resolve().parents[2]
# Run by a child interpreter: start (or attach), prove the server answers, then wait or exit.
# The child starts from default signal dispositions, like a process started from a terminal.
# An ignored SIGTERM is inherited across exec and deliberately kept ignored (nohup); the pytest
# process may have one, e.g. when it runs in the background of a non-interactive shell (SIGINT
# ignored) after Dagster mapped SIGTERM to SIGINT's disposition.
CHILD = """
import signal, sys, time
for signum in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(signum, signal.SIG_DFL)
from quimbi_pipeline.db.connection import connect
from quimbi_pipeline.db.embedded import EmbeddedPostgres
pg = EmbeddedPostgres(sys.argv[1]).start()
with connect(pg.url()) as conn:
    conn.execute("SELECT 1")
print("ready", flush=True)
if sys.argv[2] == "wait":
    time.sleep(120)
"""


@pytest.fixture(scope="module")
def pgdata(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One data dir for this module, so initdb runs once; each test leaves no server behind.

    It lies in a folder only its owner may enter, like a home folder such as /root.
    """
    private = tmp_path_factory.mktemp("embedded") / "private_home"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    requested = private / "pgdata"
    yield requested
    real = requested.resolve()
    assert _postmaster_pid(real) is None
    # Removing a data dir takes seconds on a busy disk; nothing waits for it, so don't block.
    subprocess.Popen(["rm", "-rf", str(real)], start_new_session=True)


def _postmaster_pid(data_dir: Path) -> int | None:
    """Return the PID of the live postmaster of ``data_dir``, or None when none runs."""
    pid_file = data_dir.resolve() / "postmaster.pid"
    if not pid_file.exists():
        return None
    pid = int(pid_file.read_text().splitlines()[0])
    try:
        alive = psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        alive = False
    return pid if alive else None


def _holders(data_dir: Path) -> list[int]:
    path = data_dir.resolve() / ".handle_pids.json"
    return json.loads(path.read_text() or "[]") if path.exists() else []


def _spawn(pgdata: Path, mode: str) -> subprocess.Popen[str]:
    """Start a child that uses the server; return once it printed "ready"."""
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(pgdata), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ)
        ready = selector.select(timeout=60) and child.stdout.readline().strip() == "ready"
    if not ready:
        child.kill()
        pytest.fail(f"child did not get ready: {child.communicate()[1][-2000:]}")
    return child


def test_start_connect_stop_and_restart(pgdata: Path) -> None:
    server = EmbeddedPostgres(pgdata)
    with server:
        with connect(server.url()) as conn:
            databases = conn.execute("SELECT datname FROM pg_database").fetchall()
        assert {("quimbi",), ("dagster",)} <= set(databases)
        assert server.url().startswith("postgresql://postgres@/quimbi?host=")
        assert server.dagster_storage_url().startswith("postgresql+psycopg2://postgres@/dagster?")
        assert _postmaster_pid(pgdata) is not None
    assert _postmaster_pid(pgdata) is None

    began = time.perf_counter()
    with server, connect(server.url("dagster")) as conn:
        restarted_in = time.perf_counter() - began
        assert conn.execute("SELECT current_database()").fetchone() == ("dagster",)
    assert _postmaster_pid(pgdata) is None
    # A restart reuses the data dir: no initdb, well under the seconds a fresh init takes.
    assert restarted_in < 5


def test_two_handles_in_one_process_share_the_server(pgdata: Path) -> None:
    first, second = EmbeddedPostgres(pgdata).start(), EmbeddedPostgres(pgdata).start()
    first.stop()
    with connect(second.url()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    second.stop()
    assert _postmaster_pid(pgdata) is None


def test_normal_exit_of_a_child_stops_its_server(pgdata: Path) -> None:
    child = _spawn(pgdata, "exit")
    assert child.wait(timeout=60) == 0
    assert _postmaster_pid(pgdata) is None


def test_sigterm_of_a_child_stops_its_server(pgdata: Path) -> None:
    child = _spawn(pgdata, "wait")
    assert _postmaster_pid(pgdata) is not None
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == 128 + signal.SIGTERM
    assert _postmaster_pid(pgdata) is None
    assert not (pgdata.resolve() / "postmaster.pid").exists()


def test_child_attaches_to_a_running_server_and_leaves_it_running(pgdata: Path) -> None:
    with EmbeddedPostgres(pgdata) as server:
        postmaster = _postmaster_pid(pgdata)
        child = _spawn(pgdata, "exit")
        assert child.wait(timeout=60) == 0
        assert _postmaster_pid(pgdata) == postmaster
        with connect(server.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    assert _postmaster_pid(pgdata) is None


def test_pid_of_a_killed_holder_is_pruned_so_the_server_still_stops(pgdata: Path) -> None:
    child = _spawn(pgdata, "wait")
    child.kill()
    child.wait(timeout=60)
    # SIGKILL skips all cleanup: the server runs on and still lists the dead process.
    assert _postmaster_pid(pgdata) is not None
    assert child.pid in _holders(pgdata)
    with EmbeddedPostgres(pgdata):
        assert _holders(pgdata) == [os.getpid()]
    assert _postmaster_pid(pgdata) is None


def test_prune_dead_pids_keeps_live_holders_only(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pids_file = tmp_path / ".handle_pids.json"
    pids_file.write_text(json.dumps([dead.pid, os.getpid()]))
    assert prune_dead_pids(tmp_path) == [dead.pid]
    assert json.loads(pids_file.read_text()) == [os.getpid()]
    # A live process born after the list was written got a recycled PID: it is not a holder.
    newborn = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        pids_file.write_text(json.dumps([newborn.pid]))
        written_at = psutil.Process(newborn.pid).create_time() - 60
        os.utime(pids_file, (written_at, written_at))
        assert prune_dead_pids(tmp_path) == [newborn.pid]
        assert json.loads(pids_file.read_text()) == []
    finally:
        newborn.kill()
        newborn.wait()


def test_data_dir_under_a_private_folder_is_relocated_without_opening_it(pgdata: Path) -> None:
    with EmbeddedPostgres(pgdata) as server:
        with connect(server.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        real = server.data_dir
    assert stat.S_IMODE(pgdata.parent.stat().st_mode) == 0o700
    if os.geteuid() == 0:
        # As root pgserver would have opened the private folder up: the data lives elsewhere.
        assert pgdata.is_symlink() and pgdata.resolve() == real
        assert real.parent == RELOCATED_ROOT and len(real.name) == 12
    else:
        assert not pgdata.is_symlink() and real == pgdata.resolve()


def test_exit_handler_runs_the_previous_handler_then_exits_once() -> None:
    calls: list[int] = []
    handler = exit_handler(lambda signum, frame: calls.append(signum))
    with pytest.raises(SystemExit) as raised:
        handler(signal.SIGTERM, None)
    assert raised.value.code == 128 + signal.SIGTERM
    assert calls == [signal.SIGTERM]
    # A repeated signal while exiting must not interrupt the cleanup already under way.
    handler(signal.SIGTERM, None)
    assert calls == [signal.SIGTERM]
