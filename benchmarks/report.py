"""The markdown table of benchmark results, from the raw JSON files of every run."""

import json
from pathlib import Path

from stages import STAGES, short_size

MIB = 2**20


def latest_rows(results_dir: Path) -> tuple[list[dict], dict[int, dict], dict]:
    """The newest row per (size, stage) over all raw files, each size's run context, machine."""
    rows: dict[tuple[int, str], dict] = {}
    runs: dict[tuple[int, str], dict] = {}
    machine: dict = {}
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text())
        machine = data.get("machine", machine)
        for size in data.get("sizes", []):
            if not size.get("rows"):
                continue
            runs[(size["size"], path.name)] = {
                "file": path.name,
                "commit": data.get("commit"),
                "uptime_before": size.get("uptime_before"),
                "uptime_after": size.get("uptime_after"),
                "measured": {r.get("measured_at") for r in size["rows"]},
            }
            for row in size["rows"]:
                # Rows measured under cProfile are slower than real: kept in the JSON only.
                if not row.get("profiled"):
                    rows[(row["size"], row["stage"])] = row
    order = {name: i for i, name in enumerate(STAGES)}
    ordered = sorted(rows.values(), key=lambda r: (r["size"], order.get(r["stage"], 99)))
    # Keep the runs whose rows are still the newest of some stage, with those stages.
    shown: dict[tuple[int, str], list[str]] = {}
    for row in ordered:
        for (size, file), run in runs.items():
            if size == row["size"] and row.get("measured_at") in run["measured"]:
                shown.setdefault((size, file), []).append(row["stage"])
    kept = {key: {**runs[key], "stages": stages} for key, stages in shown.items()}
    return ordered, kept, machine


def memory(nbytes: int | None) -> str:
    if not nbytes:
        return "—"
    if nbytes >= 1024 * MIB:
        return f"{nbytes / (1024 * MIB):.2f} GiB"
    return f"{nbytes / MIB:,.0f} MiB"


def steal_note(row: dict) -> str | None:
    """``steal N%`` of a row; None for rows measured before steal was recorded (absent, not
    zero)."""
    share = row.get("steal_share")
    return None if share is None else f"steal {share:.0%}"


def _notes(row: dict) -> str:
    details = row.get("details") or {}
    notes = [f"cpu {row['cpu_seconds']:.0f} s", f"load {row['load_before'][0]:.1f}"]
    if steal := steal_note(row):
        notes.append(steal)
    if row.get("postgres_peak_bytes"):
        notes.append(f"postgres {memory(row['postgres_peak_bytes'])}")
    if (row.get("postgres_cpu_seconds") or 0) >= 1:
        notes.append(f"postgres cpu {row['postgres_cpu_seconds']:.0f} s")
    for key, label in (
        ("order_lines", "lines"),
        ("rows_read", "lines"),
        ("rows", "lines"),
        ("rows_upserted", "profiles"),
        ("customers", "customers"),
        ("axes_fitted", "axes"),
        ("snapshot_weeks", "weeks"),
    ):
        value = details.get(key)
        if isinstance(value, int):
            notes.append(f"{value:,} {label}")
            if label == "lines":
                break
    if row["stage"] == "models" and "job_seconds" in details:
        notes.append(f"whole job {details['job_seconds']:.1f} s")
    stage_seconds = details.get("stage_seconds") or {}
    if row["stage"] in ("run", "run_profiles") and stage_seconds:
        inner = {k: v for k, v in stage_seconds.items() if k != "total"}
        top = sorted(inner.items(), key=lambda kv: -kv[1])[:3]
        notes.append("inside: " + ", ".join(f"{k} {v:.0f} s" for k, v in top))
        if "snapshots" in inner:
            notes.append(f"all but snapshots {row['seconds'] - inner['snapshots']:.0f} s")
    if row["stage"] == "model_checks":
        notes.append("same process as models")
    if details.get("timed_out"):
        notes.append("TIMED OUT")
    return "; ".join(notes)


def table(rows: list[dict]) -> str:
    lines = [
        "| size | stage | seconds | peak RSS | target | met? | notes |",
        "|---:|---|---:|---:|---|:---:|---|",
    ]
    for row in rows:
        met = {True: "yes", False: "**no**", None: "—"}[_met(row)]
        lines.append(
            f"| {short_size(row['size'])} | {row['stage']} | {row['seconds']:.1f} "
            f"| {memory(row['peak_rss_bytes'])} | {_target(row)} | {met} "
            f"| {_notes(row)} |"
        )
    return "\n".join(lines)


def _target(row: dict) -> str:
    target = STAGES[row["stage"]].target if row["stage"] in STAGES else None
    return target.describe() if target else "—"


def _met(row: dict) -> bool | None:
    """Judged again from the numbers, so the table follows the current targets."""
    target = STAGES[row["stage"]].target if row["stage"] in STAGES else None
    if target is None:
        return None
    if (row.get("details") or {}).get("timed_out"):
        return False
    return target.met(row["size"], row["seconds"], row["peak_rss_bytes"])


def write_markdown(results_dir: Path, out: Path) -> None:
    rows, runs, machine = latest_rows(results_dir)
    parts = [
        "# Benchmark results",
        "",
        "Written by `python benchmarks/run_benchmarks.py`; how to run it and how to read the "
        "numbers: [benchmarks/README.md](README.md).",
        "",
        f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
        f"{machine.get('memory_gib', '?')} GiB RAM, Python {machine.get('python', '?')}, "
        f"{machine.get('system', '?')}. The cores were shared with other work while measuring: "
        "the load averages below say how busy the machine was (2.0 = both cores busy). "
        "On a virtual machine, other guests can also take CPU time from it without showing in "
        "the load: the notes' steal is the share of CPU time the host gave to them during the "
        "stage (absent in rows measured before it was recorded).",
        "",
        "| size | raw file | commit | uptime before | uptime after | stages in the table |",
        "|---:|---|---|---|---|---|",
    ]
    for (size, file), run in sorted(runs.items()):
        parts.append(
            f"| {short_size(size)} | {file} | {run['commit']} | {_load(run['uptime_before'])} "
            f"| {_load(run['uptime_after'])} | {', '.join(run['stages'])} |"
        )
    parts += [
        "",
        "Seconds: the stage's own work (the Dagster job, or the generator call), measured "
        "inside its child process; `run` is the wall time of the whole command. Peak RSS: the "
        "kernel's high-water mark of that Python process (`ru_maxrss`); PostgreSQL's memory "
        "is sampled separately (notes). cpu: user + system seconds of the whole child process, "
        "start-up and imports (4-8 s) included; above `seconds` when polars used both cores, "
        "well below when the stage waited for PostgreSQL or for cores busy with other work. "
        "Targets apply at the size they name; `met?` is judged on the loaded machine's numbers.",
        "",
        table(rows),
        "",
        "Stages:",
        "",
        *[f"- `{s.name}`: {s.what}" for s in STAGES.values()],
        "",
    ]
    out.write_text("\n".join(parts))


def _load(line: str | None) -> str:
    if not line:
        return "—"
    return "load " + line.split("load average:")[-1].strip() if "load average" in line else line
