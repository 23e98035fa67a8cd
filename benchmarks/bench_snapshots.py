"""52 weekly snapshots plus their drift reports, timed through the real job (issue 5 target).

    python benchmarks/bench_snapshots.py [--customers 100000] [--weeks 52] [--home DIR]
        [--json FILE] [--seed 1]

Runs ``weekly_snapshot_job`` (temporal_snapshots then drift_reports) as one backfill run over
the last ``--weeks`` weekly partitions of the order history, as ``quimbi-pipeline run`` does,
against the embedded PostgreSQL of the home folder. The home needs the lake and the segment
models; a home without them is prepared first (generate a shop, register, ingest, lake,
segmentation: untimed). Before the timed run the snapshot tables and lake folders are emptied,
so each measurement is a first backfill. Prints a markdown row; ``--json`` writes the numbers
(``seconds`` is the timed run) for ``run_benchmarks.py``.
"""

import argparse
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import polars as pl
import psutil

from quimbi_pipeline.core.generator import generate_shop
from quimbi_pipeline.db.connection import connect
from quimbi_pipeline.defs.partitions import weekly_snapshots
from quimbi_pipeline.feature_store import orders_path
from quimbi_pipeline.home import QuimbiHome
from quimbi_pipeline.runner import RANGE_END, RANGE_START, PipelineRunner, week_key
from quimbi_pipeline.runtime import runtime

HERE = Path(__file__).resolve().parent
TARGET_SECONDS = 60.0
TARGET_CUSTOMERS = 100_000


def prepare(runner: PipelineRunner, home: QuimbiHome, customers: int, seed: int) -> None:
    """Lake and models in ``home``, generating and ingesting a shop when they are missing."""
    if not orders_path(home).exists():
        shop = home.root.parent / "shop"
        if not (shop / "drops").exists():
            print(f"generating {customers:,} customers (seed {seed}) in {shop}", flush=True)
            generate_shop(customers, shop, seed=seed)
        drops = runner.register([shop / "drops"])
        for kind in ("orders", "tickets"):
            runner.ingest(drops, kind)
        runner.execute("lake_job")
    with connect(runner.rt.database_url) as conn:
        fitted = conn.execute("SELECT count(*) FROM segment_models").fetchone()[0]
    if not fitted:
        print("fitting the segment models (segmentation_job)", flush=True)
        runner.execute("segmentation_job")


def reset(runner: PipelineRunner, home: QuimbiHome) -> None:
    """Empties the snapshot and drift tables and lake folders: the timed run is a first one."""
    with connect(runner.rt.database_url) as conn:
        conn.execute("TRUNCATE temporal_snapshots, drift_reports")
        conn.commit()
    for asset in ("temporal_snapshots", "drift_reports"):
        shutil.rmtree(home.asset_dir(asset), ignore_errors=True)


def last_weeks(home: QuimbiHome, weeks: int) -> list[str]:
    """The last ``weeks`` weekly partition keys up to the week of the latest order."""
    last = pl.scan_parquet(orders_path(home)).select(pl.col("ordered_at").max()).collect().item()
    keys = weekly_snapshots.get_partition_keys()
    end = keys.index(week_key(last.date()))
    return keys[max(0, end - weeks + 1) : end + 1]


def postgres_cpu_seconds(home: QuimbiHome) -> float:
    """CPU seconds of the embedded server so far: the postmaster, its live backends, and the
    backends that have exited (counted in the postmaster's children times)."""
    pid_file = Path(os.path.realpath(home.pgdata)) / "postmaster.pid"
    if not pid_file.exists():
        return 0.0
    postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
    times = postmaster.cpu_times()
    total = times.user + times.system + times.children_user + times.children_system
    for child in postmaster.children(recursive=True):
        try:
            child_times = child.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += child_times.user + child_times.system
    return total


def asset_metadata(result, asset: str) -> dict[str, object]:
    for event in result.get_asset_materialization_events():
        if event.materialization.asset_key.to_user_string() == asset:
            return {
                k: v.value
                for k, v in event.materialization.metadata.items()
                if isinstance(v.value, int | float | str)
            }
    return {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=TARGET_CUSTOMERS)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--home", type=Path, help="default benchmarks/work/snapshots_<N>/home")
    parser.add_argument("--json", type=Path, help="write the numbers to this file")
    parser.add_argument(
        "--threads",
        type=int,
        choices=(1, 2),
        help="the threads setting of temporal_snapshots and drift_reports (default: theirs)",
    )
    args = parser.parse_args(argv)
    root = args.home or HERE / "work" / f"snapshots_{args.customers}" / "home"
    home = QuimbiHome.at(root).ensure()
    os.environ.pop("DATABASE_URL", None)
    with runtime(home) as rt:
        runner = PipelineRunner(rt, log=lambda message: print(message, flush=True))
        prepare(runner, home, args.customers, args.seed)
        reset(runner, home)
        keys = last_weeks(home, args.weeks)
        load = os.getloadavg()
        cpu = time.process_time(), postgres_cpu_seconds(home)
        began = time.perf_counter()
        threads = {"config": {"threads": args.threads}} if args.threads else None
        result = runner.execute(
            "weekly_snapshot_job",
            tags={RANGE_START: keys[0], RANGE_END: keys[-1]},
            ops={"temporal_snapshots": threads, "drift_reports": threads} if threads else None,
        )
        seconds = time.perf_counter() - began
        python_cpu = time.process_time() - cpu[0]
        server_cpu = postgres_cpu_seconds(home) - cpu[1]
        with connect(rt.database_url) as conn:
            snapshot_rows, drift_rows = conn.execute(
                "SELECT (SELECT count(*) FROM temporal_snapshots), "
                "(SELECT count(*) FROM drift_reports)"
            ).fetchone()
    snapshots = asset_metadata(result, "temporal_snapshots")
    drift = asset_metadata(result, "drift_reports")
    customers = int(snapshots.get("customers_in_latest", 0))
    numbers = {
        "seconds": round(seconds, 2),
        "weeks": len(keys),
        "customers": customers,
        "snapshot_seconds": snapshots.get("seconds_total"),
        "snapshot_compute_seconds": snapshots.get("seconds_compute"),
        "snapshot_lake_seconds": snapshots.get("seconds_lake"),
        "snapshot_postgres_wait_seconds": snapshots.get("seconds_waiting_for_postgres"),
        "drift_seconds": drift.get("seconds_total"),
        "weeks_in_postgres": snapshots.get("written_to_postgres"),
        "snapshot_rows": snapshot_rows,
        "drift_rows": drift_rows,
        "python_cpu_seconds": round(python_cpu, 1),
        "postgres_cpu_seconds": round(server_cpu, 1),
        # This process's high-water mark, the untimed preparation included when it ran.
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "threads": snapshots.get("threads"),
        "load_before": [round(x, 2) for x in load],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    # The target is 52 weeks of a 100K-customer shop (about 99K of them have orders).
    at_target = len(keys) == 52 and abs(customers - TARGET_CUSTOMERS) <= TARGET_CUSTOMERS // 20
    met = seconds < TARGET_SECONDS if at_target else None
    verdict = "-" if met is None else "met" if met else "MISSED"
    print(
        "| customers | weeks | total s | snapshots s (compute / lake / waiting for postgres) "
        "| drift s | rows: snapshots / drift | target < 60 s at 100K |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| {customers:,} | {len(keys)} | {seconds:.1f} | {snapshots.get('seconds_total')} "
        f"({snapshots.get('seconds_compute')} / {snapshots.get('seconds_lake')} / "
        f"{snapshots.get('seconds_waiting_for_postgres')}) | {drift.get('seconds_total')} "
        f"| {snapshot_rows:,} / {drift_rows:,} | {verdict} |"
    )
    print(
        f"threads {numbers['threads']}; peak RSS {numbers['peak_rss_bytes'] / 2**30:.2f} GiB; "
        f"CPU seconds: python {python_cpu:.1f}, postgres {server_cpu:.1f}; load average "
        f"before {numbers['load_before']}, after {numbers['load_after']}"
    )
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
