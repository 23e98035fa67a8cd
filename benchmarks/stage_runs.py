"""Running the stages of one shop size as measured child processes, one row of numbers each."""

import argparse
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from measure import Measurement, run_measured
from stages import STAGES

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
        stop_embedded(self.home.pgdata)
        shutil.rmtree(self.home.root, ignore_errors=True)


def stop_embedded(pgdata: Path) -> None:
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


def run_end_to_end(run: SizeRun, profile: bool, name: str = "run") -> list[dict]:
    """`quimbi-pipeline run` on the generated drops, fresh home, timed from outside; stage
    ``run_profiles`` passes ``--snapshot-weeks 0``."""
    stop_embedded(run.run_home / "pgdata")
    shutil.rmtree(run.run_home, ignore_errors=True)
    run.logs.mkdir(parents=True, exist_ok=True)
    arguments = ["run", str(run.shop / "drops"), "--home", str(run.run_home), "--json"]
    if name == "run_profiles":
        arguments += ["--snapshot-weeks", "0"]
    command = [str(CLI), *arguments]
    if profile:
        cprofile = ["-m", "cProfile", "-o", str(_profile_path(run, name))]
        command = [str(PYTHON), *cprofile, "-m", "quimbi_pipeline.cli", *arguments]
    print(f"[{run.size:,}] {name} (end to end) ...", flush=True)
    out = run.logs / f"{name}.out"
    measured = run_measured(
        command,
        env=child_env(),
        cwd=REPO,
        stdout_path=out,
        pgdata=run.run_home / "pgdata",
        timeout=run.args.run_timeout,
    )
    if measured.timed_out:
        row = _row(run, name, measured.wall_seconds, measured, {"timed_out": True}, None)
        row["met"] = False
        stop_embedded(run.run_home / "pgdata")
        return [row]
    _check(measured, name)
    summary = json.loads(out.read_text().strip().splitlines()[-1])
    details = {
        "rows_read": summary.get("rows_read"),
        "customers": summary.get("customers"),
        "profiles_upserted": summary.get("profiles_upserted"),
        "snapshot_weeks": summary.get("snapshot_weeks"),
        "stage_seconds": summary.get("seconds"),
    }
    row = _row(run, name, measured.wall_seconds, measured, details, None)
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
        "steal_share": measured.steal_share,
        "target": target.describe() if target else None,
        "met": target.met(run.size, seconds, measured.max_rss_bytes) if target else None,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
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


def commit() -> str:
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
        ).stdout.strip()
        # The results table this script writes is not code: a rewritten one does not make
        # the measured code uncommitted.
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", ".", ":(exclude)benchmarks/results.md"],
            cwd=REPO,
            capture_output=True,
        )
        return sha + ("+dirty" if dirty.stdout.strip() else "")
    except OSError:
        return "unknown"


def run_one(run: SizeRun, name: str, profile: bool) -> list[dict]:
    if name in ("run", "run_profiles"):
        return run_end_to_end(run, profile, name)
    if name == "snapshots":
        return run_snapshot_bench(run)
    return run_stage(run, name, profile)
