"""The `quimbi-pipeline` command: generate a shop, run the pipeline headless, open the UI."""

import argparse
import contextlib
import gc
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path

_REPO_WORKSPACE = Path(__file__).resolve().parent.parent / "workspace.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # the last line of defence: explain, never a bare traceback
        from quimbi_pipeline.runner import PipelineError

        if os.environ.get("QUIMBI_DEBUG"):
            traceback.print_exc()
        kind = "" if isinstance(error, PipelineError) else f"{type(error).__name__}: "
        print(f"error: {kind}{error}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quimbi-pipeline",
        description="Behavioral customer segmentation from order exports, on Dagster.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    gen = sub.add_parser("generate", help="write a synthetic shop's order and ticket drops")
    gen.add_argument("--customers", type=int, required=True)
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--months", type=int, default=36)
    gen.set_defaults(handler=_generate)

    run = sub.add_parser("run", help="ingest export files and materialize everything they feed")
    run.add_argument("paths", nargs="+", help="export files, or folders of them")
    _add_runtime_args(run)
    run.add_argument("--json", action="store_true", help="end stdout with a JSON summary line")
    run.add_argument(
        "--snapshot-weeks",
        type=_non_negative,
        metavar="N",
        help="snapshot and report drift for the last N weeks only (default: every week of the "
        "order history; the earlier weeks can be backfilled later from the UI); 0 ends the run "
        "with the profiles written",
    )
    run.set_defaults(handler=_run)

    demo = sub.add_parser("demo", help="generate a small shop and run the pipeline on it")
    _add_runtime_args(demo)
    demo.add_argument("--customers", type=int, default=2000)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--json", action="store_true")
    demo.set_defaults(handler=_demo)

    query = sub.add_parser("sql", help="run a SQL query (or a .sql file) and print the rows")
    query.add_argument("query", help="SQL text, or the path of a .sql file")
    _add_runtime_args(query)
    query.add_argument("--limit", type=int, default=50, help="rows to print at most")
    query.set_defaults(handler=_sql)

    dev = sub.add_parser("dev", help="start the database (embedded by default) and the Dagster UI")
    _add_runtime_args(dev)
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=3000)
    dev.set_defaults(handler=_dev)
    return parser


def _add_runtime_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", help="state folder (default: $QUIMBI_HOME or ./.quimbi)")
    parser.add_argument(
        "--database-url",
        help="PostgreSQL for the project's tables (default: $DATABASE_URL, else embedded)",
    )
    parser.add_argument("--verbose", action="store_true", help="show Dagster's event log")


def _generate(args: argparse.Namespace) -> int:
    from quimbi_pipeline.core.generator import generate_shop

    report = generate_shop(args.customers, args.out, seed=args.seed, months=args.months)
    print(
        f"wrote {report.customers:,} customers, {report.orders:,} orders, "
        f"{report.order_lines:,} order lines and {report.tickets:,} tickets "
        f"({report.start} .. {report.end}) in {report.seconds:.1f} s\n"
        f"  drops:        {args.out / 'drops'} ({len(report.order_files)} order files, "
        f"{len(report.ticket_files)} ticket files)\n"
        f"  ground truth: {report.truth_path}"
    )
    return 0


def _run(args: argparse.Namespace) -> int:
    from quimbi_pipeline.runtime import resolve_home, runtime

    # The definitions (Dagster, polars, scikit-learn) take seconds to import, and starting the
    # database is mostly waiting for its process: the import runs on a thread meanwhile. This
    # thread imports nothing until it has joined (runtime() imports no module once its own
    # module is loaded), so two threads never import at once.
    preload = threading.Thread(target=_import_definitions, daemon=True)
    preload.start()
    home = resolve_home(args.home)
    with runtime(home, args.database_url) as rt:
        preload.join()
        from quimbi_pipeline.runner import PipelineRunner
        from quimbi_pipeline.summary import format_summary, summary_dict

        runner = PipelineRunner(rt, log=_progress, verbose=args.verbose)
        summary = runner.run(args.paths, snapshot_weeks=args.snapshot_weeks)
        result = summary_dict(rt, summary)
    print(format_summary(result))
    if args.json:
        print(json.dumps(result, sort_keys=True, default=str))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from quimbi_pipeline.core.generator import generate_shop
    from quimbi_pipeline.runtime import resolve_home

    home = resolve_home(args.home)
    shop = home.root / "demo_shop"
    _progress(f"generating a demo shop of {args.customers:,} customers in {shop}")
    report = generate_shop(args.customers, shop, seed=args.seed)
    args.paths = [str(p) for p in [*report.order_files, *report.ticket_files]]
    args.home = str(home.root)
    args.snapshot_weeks = None
    code = _run(args)
    print(
        "\nnext: `quimbi-pipeline dev` opens the Dagster UI on http://127.0.0.1:3000 over this "
        f"home folder ({home.root})"
    )
    return code


def _dev(args: argparse.Namespace) -> int:
    from quimbi_pipeline.runtime import resolve_home, runtime

    home = resolve_home(args.home)
    with runtime(home, args.database_url) as rt:
        target = (
            ["-w", str(_REPO_WORKSPACE)]
            if _REPO_WORKSPACE.exists()
            else ["-m", "quimbi_pipeline.definitions"]
        )
        command = [sys.executable, "-m", "dagster", "dev", *target]
        command += ["-h", args.host, "-p", str(args.port)]
        _progress(f"database: {rt.describe_database()}; home: {home.root}")
        if rt.embedded:
            # Trust auth on a private unix socket: this URL holds no secret.
            _progress(f"connect with: psql '{rt.database_url}'")
        _progress(
            f"Dagster UI on http://{args.host}:{args.port} (Ctrl-C stops it and the database)"
        )
        child = subprocess.Popen(command, env={**os.environ, **rt.env()})
        try:
            return child.wait()
        finally:
            if child.poll() is None:
                # dagster dev shuts its webserver, daemon and code servers down on SIGINT.
                child.send_signal(signal.SIGINT)
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()


def _sql(args: argparse.Namespace) -> int:
    from quimbi_pipeline.db.connection import connect
    from quimbi_pipeline.runtime import resolve_home, runtime

    path = Path(args.query)
    text = path.read_text() if path.suffix == ".sql" and path.exists() else args.query
    home = resolve_home(args.home)
    # Autocommit: each statement commits on its own, and statements that refuse to run in a
    # transaction block (VACUUM, ALTER SYSTEM, CREATE INDEX CONCURRENTLY) run too.
    with runtime(home, args.database_url) as rt, connect(rt.database_url, autocommit=True) as conn:
        cur = conn.execute(text)
        if cur.description is None:
            # VACUUM, ALTER SYSTEM and the like have no row count: show their status instead.
            print(f"{cur.rowcount} row(s) affected" if cur.rowcount >= 0 else cur.statusmessage)
            return 0
        columns = [c.name for c in cur.description]
        rows = cur.fetchmany(args.limit)
    print(_table(columns, rows))
    return 0


def _table(columns: list[str], rows: list[tuple]) -> str:
    """Rows as an aligned text table."""
    cells = [columns, *[["" if v is None else str(v) for v in row] for row in rows]]
    widths = [min(60, max(len(r[i]) for r in cells)) for i in range(len(columns))]
    lines = [" | ".join(c[:60].ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    lines.append(f"({len(rows)} row(s))")
    return "\n".join(lines)


def _import_definitions() -> None:
    """Imports the pipeline ahead of use; an error is left to the main thread's import, which
    raises it again where errors are explained."""
    with contextlib.suppress(Exception):
        importlib.import_module("quimbi_pipeline.definitions")
        importlib.import_module("quimbi_pipeline.summary")


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def console() -> None:
    """The console script: ``main``, then an exit that spares the interpreter's last garbage
    collection the objects left behind.

    That collection walks every object the imports and the run created (Dagster's above all):
    1.4 s after a run, doing nothing useful, since the database and files are closed by then.
    ``gc.freeze`` exempts the live objects from it. It stays out of ``main``, which tests call in
    their own long-lived process.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    console()
