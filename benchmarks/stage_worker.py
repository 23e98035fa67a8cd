"""One stage of the main job, run alone in this process so that its peak memory is its own.

    python benchmarks/stage_worker.py STAGE --home DIR --shop DIR --result FILE [--profile FILE]

Each stage goes through the project's real code path: the generator's core function, or the
same Dagster jobs `quimbi-pipeline run` executes (PipelineRunner), against the embedded
PostgreSQL of the home folder (attached to, when run_benchmarks.py already holds it). Only the
stage itself is timed; imports and attaching to the database are reported as setup.
"""

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import psutil

from quimbi_pipeline.core.axes import AXES
from quimbi_pipeline.db.connection import connect
from quimbi_pipeline.defs.partitions import customer_batches
from quimbi_pipeline.defs.segmentation.models import model_key
from quimbi_pipeline.runner import (
    RANGE_END,
    RANGE_START,
    PipelineError,
    PipelineRunner,
    drop_totals,
)


def _step_seconds(runner: PipelineRunner, result: dg.ExecuteInProcessResult) -> dict[str, float]:
    """Wall seconds of every step (op or check) of a run, from the instance's event log."""
    stats = runner.instance.get_run_step_stats(result.run_id)
    return {
        s.step_key: round(s.end_time - s.start_time, 3)
        for s in stats
        if s.start_time is not None and s.end_time is not None
    }


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        if materialization.asset_key == dg.AssetKey(asset):
            return {
                k: v.value
                for k, v in materialization.metadata.items()
                if isinstance(v.value, int | float | str)
            }
    return {}


def _execute_subset(
    runner: PipelineRunner, job_name: str, assets: list[dg.AssetKey]
) -> dg.ExecuteInProcessResult:
    """Runs part of a named job (as the UI's "materialize selected" does), failing loudly."""
    job = runner.defs.resolve_job_def(job_name)
    result = job.execute_in_process(
        run_config=runner.run_config,
        instance=runner.instance,
        asset_selection=assets,
        raise_on_error=False,
    )
    if not result.success:
        problems = [
            f"{e.step_key}: {e.step_failure_data.error.message.strip()}"
            for e in result.get_step_failure_events()
            if e.step_failure_data.error is not None
        ]
        raise PipelineError(f"{job_name} subset failed: " + "; ".join(problems or ["see UI"]))
    return result


def register(runner: PipelineRunner, args: argparse.Namespace) -> dict:
    drops = runner.register([args.shop / "drops"])
    return {"drops": len(drops), "bytes": sum(d.size for d in drops)}


def _ingest(kind: str) -> Callable[[PipelineRunner, argparse.Namespace], dict]:
    def ingest(runner: PipelineRunner, args: argparse.Namespace) -> dict:
        drops = runner.registry.all(kind)
        runner.ingest(drops, kind)
        return drop_totals(runner.rt.home, drops, kind)

    return ingest


def lake(runner: PipelineRunner, args: argparse.Namespace) -> dict:
    result = runner.execute("lake_job")
    orders = _metadata(result, "orders")
    return {
        "rows": orders.get("rows"),
        "duplicates_removed": orders.get("duplicates_removed"),
        "customers": orders.get("customers"),
        "steps": _step_seconds(runner, result),
    }


def features(runner: PipelineRunner, args: argparse.Namespace) -> dict:
    result = _execute_subset(runner, "segmentation_job", [dg.AssetKey("customer_features")])
    meta = _metadata(result, "customer_features")
    return {
        "customers": meta.get("customers"),
        "axes_applicable": meta.get("axes_applicable"),
        "steps": _step_seconds(runner, result),
    }


def models(runner: PipelineRunner, args: argparse.Namespace) -> dict:
    """The sample and all 14 axis fits, plus the checks the job runs with them."""
    keys = [dg.AssetKey("stratified_sample"), *[model_key(a.name) for a in AXES]]
    result = _execute_subset(runner, "segmentation_job", keys)
    summary = runner.model_summary()
    return {
        "sample_size": _metadata(result, "stratified_sample").get("sample_size"),
        "axes_fitted": len(summary["axes_fitted"]),
        "axes_skipped": len(summary["axes_skipped"]),
        "axis_k": summary["axis_k"],
        "steps": _step_seconds(runner, result),
    }


def profiles(runner: PipelineRunner, args: argparse.Namespace) -> dict:
    """Assignment and profile upsert of all 16 customer batches in one range run."""
    keys = customer_batches.get_partition_keys()
    result = runner.execute("profiles_job", tags={RANGE_START: keys[0], RANGE_END: keys[-1]})
    meta = _metadata(result, "customer_profiles")
    return {
        "batches": len(keys),
        "customers_assigned": _metadata(result, "segment_assignments").get("customers_assigned"),
        "rows_upserted": meta.get("rows_upserted"),
        "rows_changed": meta.get("rows_changed"),
        "steps": _step_seconds(runner, result),
    }


def archetypes(runner: PipelineRunner, args: argparse.Namespace) -> dict:
    result = runner.execute("archetypes_job")
    return {
        "distinct_archetypes": _metadata(result, "archetypes").get("distinct_archetypes"),
        "steps": _step_seconds(runner, result),
    }


def _empty_profiles(runner: PipelineRunner) -> None:
    """Times the first write of every profile, as in a fresh `quimbi-pipeline run`: without
    this a repeated `--only profiles` would time the cheaper no-change path of the upsert."""
    with connect(runner.rt.database_url) as conn:
        conn.execute("TRUNCATE customer_profiles")
        conn.commit()


# Untimed preparation before a stage.
PREPARE: dict[str, Callable[[PipelineRunner], None]] = {"profiles": _empty_profiles}

DB_STAGES: dict[str, Callable[[PipelineRunner, argparse.Namespace], dict]] = {
    "register": register,
    "ingest_orders": _ingest("orders"),
    "ingest_tickets": _ingest("tickets"),
    "lake": lake,
    "features": features,
    "models": models,
    "profiles": profiles,
    "archetypes": archetypes,
}


def generate(args: argparse.Namespace) -> dict:
    from quimbi_pipeline.core.generator import generate_shop

    report = generate_shop(args.customers, args.shop, seed=args.seed, months=args.months)
    return {
        "customers": report.customers,
        "orders": report.orders,
        "order_lines": report.order_lines,
        "tickets": report.tickets,
        "order_files": len(report.order_files),
        "ticket_files": len(report.ticket_files),
    }


def _timed(work: Callable[[], dict], profile: Path | None) -> tuple[float, dict]:
    profiler = cProfile.Profile() if profile else None
    cpu_began, began = time.process_time(), time.perf_counter()
    if profiler:
        profiler.enable()
    details = work()
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - began
    # All threads of this process (polars, numpy), not the database server.
    details["stage_cpu_seconds"] = round(time.process_time() - cpu_began, 3)
    if profiler and profile:
        profiler.dump_stats(profile)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
        profile.with_suffix(".txt").write_text(text.getvalue())
    return seconds, details


def _since_start() -> float:
    """Seconds since this process started: interpreter, imports, attaching to the database."""
    return time.time() - psutil.Process().create_time()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", choices=["generate", *DB_STAGES])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--shop", type=Path, required=True)
    parser.add_argument("--result", type=Path, required=True)
    parser.add_argument("--customers", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--months", type=int, default=36)
    parser.add_argument("--profile", type=Path, help="write a cProfile of the stage here")
    args = parser.parse_args(argv)

    if args.stage == "generate":
        setup = _since_start()
        seconds, details = _timed(lambda: generate(args), args.profile)
    else:
        from quimbi_pipeline.runtime import resolve_home, runtime

        with runtime(resolve_home(args.home)) as rt:
            runner = PipelineRunner(rt, log=lambda m: print(m, file=sys.stderr, flush=True))
            if args.stage in PREPARE:
                PREPARE[args.stage](runner)
            setup = _since_start()
            seconds, details = _timed(lambda: DB_STAGES[args.stage](runner, args), args.profile)
    result = {
        "stage": args.stage,
        "seconds": round(seconds, 3),
        "setup_seconds": round(setup, 3),
        "details": details,
    }
    args.result.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
