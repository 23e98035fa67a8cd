"""The `quimbi-pipeline` console script: the contract other tooling relies on.

Two full runs in all, both in-process on one tiny shop with the same home and database: the
second must be rerunnable. The installed script itself is run once, on a bad file.
"""

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from psycopg import sql

from quimbi_pipeline.cli import main
from quimbi_pipeline.core.axes import AXES
from quimbi_pipeline.core.drift import SEVERITIES
from quimbi_pipeline.core.generator import GenerateReport, generate_shop
from quimbi_pipeline.db.connection import connect
from quimbi_pipeline.db.embedded import EmbeddedPostgres
from quimbi_pipeline.db.migrations import find_migrations
from quimbi_pipeline.feature_store import orders_path
from quimbi_pipeline.home import QuimbiHome
from quimbi_pipeline.runner import history_weeks, week_key
from quimbi_pipeline.runtime import Runtime
from quimbi_pipeline_tests.drop_files import order_row, write_orders

REPO_ROOT = Path(__file__).resolve().parents[1]

# The embedded test server trusts local connections, so it ignores this password: the runs
# succeed, and whatever they print or write can be searched for it.
PASSWORD = "Pw-never-shown-7f3a"
CONSOLE_SCRIPT = Path(sys.executable).with_name("quimbi-pipeline")
STAGES = {"register", "ingest_orders", "ingest_tickets", "lake", "segmentation", "profiles"}


def with_password(url: str) -> str:
    assert url.startswith("postgresql://postgres@"), url
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{PASSWORD}@", 1)


def project_tables() -> list[str]:
    """The tables the migrations create (Dagster's own storage shares the database)."""
    pattern = re.compile(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)", re.IGNORECASE)
    return sorted({t for m in find_migrations() for t in pattern.findall(m.sql)})


def table_counts(url: str) -> dict[str, int]:
    with connect(url) as conn:
        return {
            table: conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
            ).fetchone()[0]
            for table in project_tables()
        }


def last_json_line(stdout: str) -> dict:
    lines = stdout.strip().splitlines()
    assert lines, "nothing on stdout"
    return json.loads(lines[-1])


@dataclass(frozen=True)
class CliRuns:
    shop: GenerateReport
    home: Path
    database_url: str
    first: dict
    first_output: str
    first_counts: dict[str, int]
    second: dict
    second_output: str
    second_counts: dict[str, int]


# An extra export beside the generated ones: one good line and two rejects.
EXTRA_LINES = [
    order_row("X-1", "X1", "2023-06-01 12:00:00", "15.00"),
    order_row("X-2", "", "2023-06-01 12:00:00", "15.00"),
    order_row("X-3", "X1", "2023-06-31", "15.00"),
]
EXTRA_REJECTED = 2


@pytest.fixture(scope="module")
def tiny_shop(tmp_path_factory: pytest.TempPathFactory) -> GenerateReport:
    shop = generate_shop(60, tmp_path_factory.mktemp("tiny_shop"), seed=11, months=12)
    write_orders(shop.order_files[0].parent / "orders_extra.csv", EXTRA_LINES)
    return shop


@pytest.fixture(scope="module")
def cli_database(embedded_pg: EmbeddedPostgres) -> Iterator[str]:
    """A fresh database on the embedded test server, addressed with a (fake) password."""
    name = f"test_{int(time.time())}_{uuid.uuid4().hex[:8]}"
    admin = embedded_pg.url("postgres")
    with connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield with_password(embedded_pg.url(name))
    with connect(admin, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="module")
def cli_runs(
    tiny_shop: GenerateReport,
    cli_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> CliRuns:
    home = tmp_path_factory.mktemp("cli_home")
    drops = tiny_shop.order_files[0].parent
    args = ["run", str(drops), "--json", "--home", str(home), "--database-url", cli_database]

    first_out, first_err = _run_in_process(args)
    first = last_json_line(first_out)
    first_counts = table_counts(cli_database)

    second_out, second_err = _run_in_process(args)
    return CliRuns(
        shop=tiny_shop,
        home=home,
        database_url=cli_database,
        first=first,
        first_output=first_out + first_err,
        first_counts=first_counts,
        second=last_json_line(second_out),
        second_output=second_out + second_err,
        second_counts=table_counts(cli_database),
    )


def _run_in_process(args: list[str]) -> tuple[str, str]:
    """main(args) with stdout and stderr captured (capsys is not available to module fixtures)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    assert code == 0, err.getvalue()
    return out.getvalue(), err.getvalue()


def test_generate_writes_the_drops_and_the_ground_truth(tmp_path, capsys) -> None:
    out = tmp_path / "shop"
    code = main(["generate", "--customers", "25", "--out", str(out), "--months", "12"])

    assert code == 0
    orders = sorted((out / "drops").glob("orders_*.csv"))
    tickets = sorted((out / "drops").glob("tickets_*.csv"))
    assert len(orders) == 12
    assert tickets
    assert orders[0].read_text().splitlines()[0].startswith("OrderID,Customer_ID,Date,")
    printed = capsys.readouterr().out
    assert "wrote 25 customers" in printed
    truth = re.search(r"ground truth: (\S+)", printed)
    assert truth and Path(truth[1]).exists()


def test_run_ends_stdout_with_one_json_summary(cli_runs: CliRuns) -> None:
    summary = cli_runs.first
    expected = {
        "rows_read", "rows_accepted", "rows_rejected", "customers", "seconds", "axes_fitted",
        "axes_skipped", "axis_k", "profiles_upserted", "snapshot_weeks", "latest_drift",
    }  # fmt: skip
    assert expected <= summary.keys()
    assert summary["rows_read"] == summary["rows_accepted"] + summary["rows_rejected"]
    assert summary["rows_read"] == cli_runs.shop.order_lines + len(EXTRA_LINES)
    assert summary["rows_rejected"] == EXTRA_REJECTED
    assert summary["order_drops"] == len(cli_runs.shop.order_files) + 1
    assert 0 < summary["customers"] <= 61
    tickets = summary["tickets"]
    assert tickets["rows_read"] == tickets["rows_accepted"] + tickets["rows_rejected"]
    assert tickets["rows_read"] == cli_runs.shop.tickets


def test_run_summary_reports_stage_times_models_profiles_and_drift(cli_runs: CliRuns) -> None:
    summary = cli_runs.first
    seconds = summary["seconds"]
    assert STAGES | {"snapshots", "total"} <= seconds.keys()
    assert all(isinstance(s, int | float) and s >= 0 for s in seconds.values())
    assert seconds["total"] == pytest.approx(
        sum(v for k, v in seconds.items() if k != "total"), abs=0.01
    )
    axes = {axis.name for axis in AXES}
    assert set(summary["axes_fitted"]) | set(summary["axes_skipped"]) == axes
    assert not set(summary["axes_fitted"]) & set(summary["axes_skipped"])
    assert set(summary["axis_k"]) == set(summary["axes_fitted"])
    assert all(k >= 2 for k in summary["axis_k"].values())
    assert summary["profiles_upserted"] >= summary["customers"]
    # Twelve months of history: one snapshot a week.
    assert 52 <= summary["snapshot_weeks"] <= 54
    drift = summary["latest_drift"]
    assert set(drift["severity_counts"]) == set(SEVERITIES)
    assert sum(drift["severity_counts"].values()) == drift["customers"] > 0


def test_run_prints_a_readable_summary_before_the_json(cli_runs: CliRuns) -> None:
    assert f"{cli_runs.first['rows_read']:,} rows read" in cli_runs.first_output


def test_second_run_of_the_same_files_is_rerunnable(cli_runs: CliRuns) -> None:
    again = cli_runs.second
    for key in ("rows_read", "rows_accepted", "rows_rejected", "customers", "profiles_upserted"):
        assert again[key] == cli_runs.first[key], key
    assert again["snapshot_weeks"] == cli_runs.first["snapshot_weeks"]
    # Same data, same seeds: the re-fit reproduces every assignment.
    assert again["profiles_changed"] == 0
    assert cli_runs.second_counts == cli_runs.first_counts
    drops = len(cli_runs.shop.order_files) + 1 + len(cli_runs.shop.ticket_files)
    assert cli_runs.first_counts["drops"] == drops
    assert "Traceback" not in cli_runs.second_output


def test_the_password_is_never_shown_or_written(cli_runs: CliRuns) -> None:
    assert PASSWORD not in cli_runs.first_output
    assert PASSWORD not in cli_runs.second_output
    assert cli_runs.first["database"].startswith("postgresql://postgres:***@/")
    for path in cli_runs.home.rglob("*"):
        if path.is_file() and path.stat().st_size < 50_000_000:
            assert PASSWORD.encode() not in path.read_bytes(), path


def _sql(cli_runs: CliRuns, query: str) -> str:
    """stdout of ``quimbi-pipeline sql query`` on the home and database of ``cli_runs``."""
    args = ["--home", str(cli_runs.home), "--database-url", cli_runs.database_url]
    return _run_in_process(["sql", query, *args])[0]


def test_sql_prints_the_rows_of_a_query_or_a_query_file(cli_runs: CliRuns) -> None:
    out = _sql(cli_runs, "SELECT count(*) AS profiles FROM customer_profiles")
    header, _rule, value, footer = out.strip().splitlines()
    assert header.strip() == "profiles"
    assert int(value) == cli_runs.first_counts["customer_profiles"] > 0
    assert footer == "(1 row(s))"

    query = REPO_ROOT / "sql" / "queries" / "segment_distribution.sql"
    out = _sql(cli_runs, str(query))
    assert int(out.strip().splitlines()[-1].strip("()").split()[0]) > 0


def test_sql_runs_statements_that_refuse_a_transaction_block(cli_runs: CliRuns) -> None:
    out = _sql(cli_runs, "VACUUM (ANALYZE) customer_profiles")
    assert out.strip() == "VACUUM"
    with connect(cli_runs.database_url) as conn:
        analyzed = conn.execute(
            "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
            "WHERE relname = 'customer_profiles'"
        ).fetchone()
    assert analyzed == (True,)


def test_describe_database_redacts_the_password(tmp_path) -> None:
    url = "postgresql://shop:S3cret%40x@db.example.com:5432/quimbi?sslmode=require"
    rt = Runtime(QuimbiHome.at(tmp_path), url, url, embedded=False)
    described = rt.describe_database()
    assert "S3cret" not in described
    assert described == "postgresql://shop:***@db.example.com:5432/quimbi?sslmode=require"


def test_a_rejected_login_names_the_server_not_the_password(
    embedded_pg: EmbeddedPostgres, tiny_shop: GenerateReport, tmp_path, capsys
) -> None:
    # No such role: the server refuses the connection before anything runs.
    url = embedded_pg.url("postgres").replace("postgres@", f"intruder:{PASSWORD}@", 1)
    code = main(
        ["run", str(tiny_shop.order_files[0]), "--home", str(tmp_path), "--database-url", url]
    )

    captured = capsys.readouterr()
    assert code == 1
    assert PASSWORD not in captured.out + captured.err
    assert "intruder:***@" in captured.err
    assert "Traceback" not in captured.err


BAD_FILES = {
    "unknown_layout.csv": ("warehouse,shelf,count\nA,1,3\n", "unknown layout"),
    "missing_sales.csv": (
        "OrderID,Customer_ID,Date,QTY\n1,C1,2024-01-02,1\n",
        "missing required column 'Sales'",
    ),
    "empty.csv": ("", "empty file"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_file_fails_naming_the_file_and_line(name, clean_db, tmp_path, capsys) -> None:
    content, problem = BAD_FILES[name]
    good = write_orders(tmp_path / "in" / "good.csv", [order_row("1", "C1", "2024-01-02")])
    bad = good.with_name(name)
    bad.write_text(content)

    code = main(
        ["run", str(good.parent), "--home", str(tmp_path / "home"), "--database-url", clean_db]
    )

    captured = capsys.readouterr()
    assert code != 0
    assert f"{bad}:1: " in captured.err
    assert problem in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""


def test_the_console_script_exits_non_zero_on_a_bad_file(clean_db, tmp_path) -> None:
    bad = tmp_path / "inventory.csv"
    bad.write_text("warehouse,shelf,count\nA,1,3\n")

    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "run", str(bad), "--home", str(tmp_path / "h"), "--json",
         "--database-url", clean_db],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )  # fmt: skip

    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: {bad}:1: unknown layout")
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_the_console_script_exits_zero_with_its_whole_output(tmp_path) -> None:
    # console() freezes the garbage collector before exiting: the exit code and every line
    # printed must still come through.
    out = tmp_path / "shop"
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "generate", "--customers", "25", "--out", str(out), "--months", "12"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("wrote 25 customers")
    assert f"ground truth: {out}" in done.stdout.splitlines()[-1]
    assert len(list((out / "drops").glob("orders_*.csv"))) == 12


# What test_starting_the_runtime_imports_no_module runs in a fresh interpreter.
_RUNTIME_IMPORTS = """
import sys
from quimbi_pipeline.runtime import resolve_home, runtime
before = set(sys.modules)
with runtime(resolve_home(sys.argv[1]), sys.argv[2] or None):
    print(sorted(set(sys.modules) - before))
"""


@pytest.mark.parametrize("server", ["embedded", "url"])
def test_starting_the_runtime_imports_no_module(server, clean_db, tmp_path) -> None:
    # `run` imports the pipeline on a thread while runtime() starts the embedded database (or
    # migrates the one at the URL): if both threads imported at once, a circular import
    # between them could deadlock.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "QUIMBI_HOME")}
    url = clean_db if server == "url" else ""
    done = subprocess.run(
        [sys.executable, "-c", _RUNTIME_IMPORTS, str(tmp_path / "home"), url],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_history_weeks_are_every_week_of_the_history_or_its_last_n() -> None:
    first, last = date(2024, 1, 3), date(2024, 3, 20)
    every = history_weeks(first, last)
    # Weekly partitions start on Sundays: 2023-12-31 holds January 3rd, 2024-03-17 March 20th.
    assert (every[0], every[-1]) == ("2023-12-31", "2024-03-17")
    assert len(every) == 12
    assert history_weeks(first, last, 5) == every[-5:]
    assert history_weeks(first, last, 100) == every
    # weeks[-0:] would be every week: a limit of 0 is refused, not read as "no limit".
    with pytest.raises(ValueError, match="at least 1"):
        history_weeks(first, last, 0)


def test_snapshot_weeks_must_not_be_negative(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["run", "drops", "--snapshot-weeks", "-1"])
    assert "must be 0 or more" in capsys.readouterr().err


def _run_snapshot_weeks(
    shop: GenerateReport, database_url: str, tmp_path: Path, weeks: int
) -> tuple[Path, dict[str, object]]:
    """``run --snapshot-weeks weeks --json`` of the shop's drops in a new home under
    ``tmp_path``: the home and the summary."""
    home = tmp_path / "home"
    drops = shop.order_files[0].parent
    args = ["run", str(drops), "--json", "--home", str(home), "--database-url", database_url]
    out, _ = _run_in_process([*args, "--snapshot-weeks", str(weeks)])
    return home, last_json_line(out)


def test_run_with_zero_snapshot_weeks_ends_with_the_profiles(
    tiny_shop: GenerateReport, clean_db: str, tmp_path: Path
) -> None:
    home, summary = _run_snapshot_weeks(tiny_shop, clean_db, tmp_path, 0)
    assert summary["snapshot_weeks"] == 0
    assert summary["latest_drift"] == {}
    assert set(summary["seconds"]) == STAGES | {"total"}
    assert summary["profiles_upserted"] >= summary["customers"] > 0
    assert not QuimbiHome.at(home).asset_dir("temporal_snapshots").exists()
    assert not QuimbiHome.at(home).asset_dir("drift_reports").exists()
    with connect(clean_db) as conn:
        counts = conn.execute(
            "SELECT (SELECT count(*) FROM temporal_snapshots),"
            " (SELECT count(*) FROM drift_reports), (SELECT count(*) FROM customer_profiles)"
        ).fetchone()
    assert counts[:2] == (0, 0)
    assert counts[2] == summary["profiles_upserted"]


def test_run_with_snapshot_weeks_backfills_only_the_latest_weeks(
    tiny_shop: GenerateReport, clean_db: str, tmp_path: Path
) -> None:
    home, summary = _run_snapshot_weeks(tiny_shop, clean_db, tmp_path, 3)
    assert summary["snapshot_weeks"] == 3
    weeks = QuimbiHome.at(home).asset_dir("temporal_snapshots") / "weekly"
    days = sorted(p.stem for p in weeks.glob("*.parquet"))
    assert len(days) == 3
    # The latest is the week of the latest order (its snapshot is taken on the Saturday).
    latest = pl.read_parquet(orders_path(QuimbiHome.at(home)))["ordered_at"].max().date()
    assert days[-1] == str(date.fromisoformat(week_key(latest)) + timedelta(days=6))
    # The first of them has no snapshot before it: drift for the other two.
    reports = QuimbiHome.at(home).asset_dir("drift_reports")
    assert sorted(p.stem for p in reports.glob("*.parquet")) == days[1:]
    assert summary["latest_drift"]["customers"] > 0
    with connect(clean_db) as conn:
        stored = conn.execute("SELECT DISTINCT snapshot_date::text FROM temporal_snapshots")
        assert sorted(d for (d,) in stored.fetchall()) == days
