"""Times each stage of the main job at several shop sizes, with peak memory, against the issues.

    python benchmarks/run_benchmarks.py --sizes 10000 100000 1000000 \
        [--only STAGE ...] [--out benchmarks/results.md]

Per size it generates a shop, then runs every stage in its own child process (so the kernel's
peak-RSS figure is that stage's alone) against an embedded PostgreSQL this script holds open,
and finally the whole `quimbi-pipeline run` on a fresh home. Raw numbers go to
benchmarks/results/<timestamp>.json; the markdown table (latest measurement per size and
stage over every JSON file there) goes to --out. See benchmarks/README.md.
"""

import argparse
import fcntl
import json
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from measure import machine, uptime
from report import steal_note, write_markdown
from stage_runs import SizeRun, StageFailed, commit, run_one, stop_embedded
from stages import MEASURED_WITH, STAGES, with_prerequisites

from quimbi_pipeline.db.embedded import EmbeddedPostgres

HERE = Path(__file__).resolve().parent


def bench_size(size: int, args: argparse.Namespace) -> dict:
    run = SizeRun(args.work, size, args)
    with _exclusive(run.dir):
        return _bench_size(run, args)


@contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    """One benchmark at a time per work folder: a second one would wipe the first's home."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(
                f"{folder} is in use by another run_benchmarks.py; wait for it, or give this "
                "one its own --work folder"
            ) from None
        yield


def _bench_size(run: SizeRun, args: argparse.Namespace) -> dict:
    size = run.size
    selected = [s for s in args.only or list(STAGES) if s not in (args.skip or [])]
    fresh = args.only is None or any(
        STAGES[MEASURED_WITH.get(s, s)].needs_fresh_home for s in selected
    )
    done = run.done()
    if fresh:
        run.fresh_home()
        done &= {"generate"} if (run.shop / "drops").exists() else set()
    plan = with_prerequisites(selected, done)
    info = {"size": size, "uptime_before": uptime(), "plan": plan, "rows": []}
    print(f"[{size:,}] {info['uptime_before']}\n[{size:,}] stages: {', '.join(plan)}", flush=True)
    server = EmbeddedPostgres(run.home.ensure().pgdata).start()
    try:
        for name in plan:
            try:
                rows = run_one(run, name, name in (args.profile or []))
            except StageFailed as failure:
                # Later stages need this one: record why and go on with the next size.
                info["failed"] = str(failure)
                print(f"[{size:,}] {failure}", flush=True)
                break
            for row in rows:
                print(f"[{size:,}] {_line(row)}", flush=True)
            info["rows"] += rows
            if rows:
                done.add(name)
                run.mark(done)
    finally:
        server.stop()
    info["uptime_after"] = uptime()
    if args.clean:
        stop_embedded(run.run_home / "pgdata")
        shutil.rmtree(run.dir, ignore_errors=True)
    return info


def _line(row: dict) -> str:
    met = {True: "met", False: "MISSED", None: ""}[row["met"]]
    steal = steal_note(row)
    return (
        f"{row['stage']}: {row['seconds']:.1f} s, peak RSS {row['peak_rss_bytes'] / 2**20:,.0f} "
        f"MiB, cpu {row['cpu_seconds']:.1f} s, load {row['load_before'][0]:.2f}"
        f"{f', {steal}' if steal else ''} {met}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument(
        "--only", nargs="+", choices=list(STAGES), metavar="STAGE", help="these stages only"
    )
    parser.add_argument(
        "--skip", nargs="+", choices=list(STAGES), metavar="STAGE", help="all but these stages"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results.md")
    parser.add_argument("--work", type=Path, default=HERE / "work", help="generated data")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument(
        "--profile", nargs="+", choices=list(STAGES), metavar="STAGE", help="cProfile these"
    )
    parser.add_argument("--stage-timeout", type=float, default=3600)
    parser.add_argument("--run-timeout", type=float, default=3600, help="for `run` (end to end)")
    parser.add_argument("--clean", action="store_true", help="delete each size's data after")
    parser.add_argument(
        "--report-only", action="store_true", help="rebuild --out from the raw files, run nothing"
    )
    args = parser.parse_args(argv)
    out_dir = HERE / "results"
    if args.report_only:
        write_markdown(out_dir, args.out)
        print(f"table: {args.out}")
        return 0

    started = datetime.now(UTC)
    results = {
        "started_at": started.isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(),
        "argv": sys.argv[1:],
        "sizes": [],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    began = time.perf_counter()
    try:
        for size in args.sizes:
            results["sizes"].append(bench_size(size, args))
    finally:
        results["seconds"] = round(time.perf_counter() - began, 1)
        if results["sizes"]:
            raw.write_text(json.dumps(results, indent=2, default=str))
            write_markdown(out_dir, args.out)
            print(f"raw numbers: {raw}\ntable: {args.out}")
    failed = [f"{s['size']:,}: {s['failed']}" for s in results["sizes"] if "failed" in s]
    for failure in failed:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
