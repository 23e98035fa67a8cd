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
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from measure import Measurement, machine, run_measured, uptime
from report import write_markdown
from stages import MEASURED_WITH, STAGES, with_prerequisites

from quimbi_pipeline.db.embedded import EmbeddedPostgres
from quimbi_pipeline.home import QuimbiHome

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PYTHON = Path(sys.executable)
CLI = PYTHON.parent / "quimbi-pipeline"
SNAPSHOT_BENCH = HERE / "bench_snapshots.py"


class SizeRun:
    """The work folder of one shop size: generated shop, stage home, end-to-end home, state."""

    def __init__(self, root: Path, size: int, args: argparse.Namespace):
        self.size, self.args = size, args
        self.dir = root / str(size)
        self.shop = self.dir / "shop"
        self.home = QuimbiHome.at(self.dir / "home")
        self.run_home = self.dir / "run_home"
        self.logs = self.dir / "logs"
        self.state_file = self.dir / "state.json"

    def done(self) -> set[str]:
        if not self.state_file.exists():
            return set()
        state = json.loads(self.state_file.read_text())
        same_shop = state.get("shop") == self._shop_key()
        return set(state.get("done", [])) if same_shop else set()

    def mark(self, done: set[str]) -> None:
        self.state_file.write_text(
            json.dumps({"shop": self._shop_key(), "done": sorted(done)}, indent=2)
        )

    def _shop_key(self) -> dict:
        return {"customers": self.size, "seed": self.args.seed, "months": self.args.months}

    def fresh_home(self) -> None:
        _stop_embedded(self.home.pgdata)
        shutil.rmtree(self.home.root, ignore_errors=True)


def _stop_embedded(pgdata: Path) -> None:
    """Stops a server a killed run may have left on ``pgdata`` (attach, then let go)."""
    if (Path(os.path.realpath(pgdata)) / "postmaster.pid").exists():
        EmbeddedPostgres(pgdata).start().stop()


def child_env() -> dict[str, str]:
    """The children use the embedded server: no DATABASE_URL, no QUIMBI_HOME from outside."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "QUIMBI_HOME")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_stage(run: SizeRun, name: str, profile: bool) -> list[dict]:
    """Runs one stage in a child process; returns its rows (models also yields model_checks)."""
    run.logs.mkdir(parents=True, exist_ok=True)
    result_path = run.logs / f"{name}.json"
    result_path.unlink(missing_ok=True)
    command = [
        str(PYTHON),
        str(HERE / "stage_worker.py"),
        name,
        "--home",
        str(run.home.root),
        "--shop",
        str(run.shop),
        "--result",
        str(result_path),
        "--customers",
        str(run.size),
        "--seed",
        str(run.args.seed),
        "--months",
        str(run.args.months),
    ]
    if profile:
        command += ["--profile", str(_profile_path(run, name))]
    if name == "generate":
        shutil.rmtree(run.shop, ignore_errors=True)
    print(f"[{run.size:,}] {name} ...", flush=True)
    measured = run_measured(
        command,
        env=child_env(),
        cwd=REPO,
        stdout_path=run.logs / f"{name}.out",
        pgdata=run.home.pgdata,
        timeout=run.args.stage_timeout,
    )
    _check(measured, name)
    result = json.loads(result_path.read_text())
    details = result["details"]
    row = _row(run, name, result["seconds"], measured, details, result["setup_seconds"])
    row["profiled"] = profile
    if name != "models":
        return [row]
    # One Dagster run fits the models and checks them; split its steps into two rows.
    steps = details.get("steps", {})
    check_steps = {k: v for k, v in steps.items() if "fidelity" in k}
    fit_seconds = sum(v for k, v in steps.items() if k not in check_steps)
    row["seconds"] = round(fit_seconds, 3)
    row["met"] = STAGES["models"].target.met(run.size, fit_seconds, measured.max_rss_bytes)
    row["details"]["job_seconds"] = result["seconds"]
    rows = [row]
    if check_steps:
        checks = _row(run, "model_checks", sum(check_steps.values()), measured, {}, None)
        checks["details"] = {"steps": check_steps, "peak_rss_shared_with": "models"}
        checks["profiled"] = profile
        rows.append(checks)
    return rows


def run_end_to_end(run: SizeRun, profile: bool) -> list[dict]:
    """`quimbi-pipeline run` on the generated drops, fresh home, timed from outside."""
    _stop_embedded(run.run_home / "pgdata")
    shutil.rmtree(run.run_home, ignore_errors=True)
    run.logs.mkdir(parents=True, exist_ok=True)
    arguments = ["run", str(run.shop / "drops"), "--home", str(run.run_home), "--json"]
    command = [str(CLI), *arguments]
    if profile:
        cprofile = ["-m", "cProfile", "-o", str(_profile_path(run, "run"))]
        command = [str(PYTHON), *cprofile, "-m", "quimbi_pipeline.cli", *arguments]
    print(f"[{run.size:,}] run (end to end) ...", flush=True)
    out = run.logs / "run.out"
    measured = run_measured(
        command,
        env=child_env(),
        cwd=REPO,
        stdout_path=out,
        pgdata=run.run_home / "pgdata",
        timeout=run.args.run_timeout,
    )
    if measured.timed_out:
        row = _row(run, "run", measured.wall_seconds, measured, {"timed_out": True}, None)
        row["met"] = False
        _stop_embedded(run.run_home / "pgdata")
        return [row]
    _check(measured, "run")
    summary = json.loads(out.read_text().strip().splitlines()[-1])
    details = {
        "rows_read": summary.get("rows_read"),
        "customers": summary.get("customers"),
        "profiles_upserted": summary.get("profiles_upserted"),
        "snapshot_weeks": summary.get("snapshot_weeks"),
        "stage_seconds": summary.get("seconds"),
    }
    row = _row(run, "run", measured.wall_seconds, measured, details, None)
    row["profiled"] = profile
    return [row]


def run_snapshot_bench(run: SizeRun) -> list[dict]:
    """Calls the snapshot benchmark another engineer owns, when it exists (not duplicated)."""
    if not SNAPSHOT_BENCH.exists():
        print(f"[{run.size:,}] snapshots: {SNAPSHOT_BENCH.name} not present, skipped", flush=True)
        return []
    run.logs.mkdir(parents=True, exist_ok=True)
    result_path = run.logs / "snapshots.json"
    result_path.unlink(missing_ok=True)
    command = [
        str(PYTHON),
        str(SNAPSHOT_BENCH),
        "--home",
        str(run.home.root),
        "--customers",
        str(run.size),
        "--weeks",
        "52",
        "--json",
        str(result_path),
    ]
    print(f"[{run.size:,}] snapshots ({SNAPSHOT_BENCH.name}) ...", flush=True)
    measured = run_measured(
        command,
        env=child_env(),
        cwd=REPO,
        stdout_path=run.logs / "snapshots.out",
        pgdata=run.home.pgdata,
        timeout=run.args.stage_timeout,
    )
    _check(measured, "snapshots")
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    seconds = float(result.get("seconds", measured.wall_seconds))
    return [_row(run, "snapshots", seconds, measured, result, None)]


def _row(
    run: SizeRun,
    stage: str,
    seconds: float,
    measured: Measurement,
    details: dict,
    setup_seconds: float | None,
) -> dict:
    target = STAGES[stage].target
    return {
        "size": run.size,
        "stage": stage,
        "seconds": round(seconds, 3),
        "peak_rss_bytes": measured.max_rss_bytes,
        "tree_rss_peak_bytes": measured.tree_rss_peak_bytes,
        "postgres_peak_bytes": measured.postgres_peak_bytes,
        "postgres_cpu_seconds": measured.postgres_cpu_seconds,
        "cpu_seconds": measured.cpu_seconds,
        "child_wall_seconds": measured.wall_seconds,
        "setup_seconds": setup_seconds,
        "load_before": measured.load_before,
        "load_after": measured.load_after,
        "target": target.describe() if target else None,
        "met": target.met(run.size, seconds, measured.max_rss_bytes) if target else None,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "details": details,
    }


class StageFailed(Exception):
    """A stage's child process failed or timed out; the size's later stages are not run."""


def _check(measured: Measurement, name: str) -> None:
    if measured.timed_out:
        raise StageFailed(f"stage {name} timed out after {measured.wall_seconds:.0f} s")
    if measured.returncode != 0:
        raise StageFailed(
            f"stage {name} failed (exit {measured.returncode}):\n{measured.stderr_tail}"
        )


def _profile_path(run: SizeRun, name: str) -> Path:
    folder = run.args.work / "profiles"  # gitignored, like the data
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{run.size}_{name}.prof"


def _commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True)
        return sha + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


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
                rows = _run_one(run, name, name in (args.profile or []))
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
        _stop_embedded(run.run_home / "pgdata")
        shutil.rmtree(run.dir, ignore_errors=True)
    return info


def _run_one(run: SizeRun, name: str, profile: bool) -> list[dict]:
    if name == "run":
        return run_end_to_end(run, profile)
    if name == "snapshots":
        return run_snapshot_bench(run)
    return run_stage(run, name, profile)


def _line(row: dict) -> str:
    met = {True: "met", False: "MISSED", None: ""}[row["met"]]
    return (
        f"{row['stage']}: {row['seconds']:.1f} s, peak RSS {row['peak_rss_bytes'] / 2**20:,.0f} "
        f"MiB, cpu {row['cpu_seconds']:.1f} s, load {row['load_before'][0]:.2f} {met}"
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
        "commit": _commit(),
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
        raw.write_text(json.dumps(results, indent=2, default=str))
        write_markdown(out_dir, args.out)
        print(f"raw numbers: {raw}\ntable: {args.out}")
    failed = [f"{s['size']:,}: {s['failed']}" for s in results["sizes"] if "failed" in s]
    for failure in failed:
        print(f"FAILED {failure}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
