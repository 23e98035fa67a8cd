"""The run summary: one JSON object for tooling, and the same facts as text for people."""

from quimbi_pipeline.runner import RunSummary, drop_totals
from quimbi_pipeline.runtime import Runtime


def summary_dict(rt: Runtime, summary: RunSummary) -> dict:
    """The `--json` object: order-row counts at the top level, tickets and stage times beside."""
    orders = drop_totals(rt.home, summary.drops, "orders")
    tickets = drop_totals(rt.home, summary.drops, "tickets")
    seconds = dict(summary.seconds)
    seconds["total"] = round(sum(summary.seconds.values()), 3)
    return {
        "rows_read": orders["rows_read"],
        "rows_accepted": orders["rows_accepted"],
        "rows_rejected": orders["rows_rejected"],
        "customers": orders["customers"],
        "order_drops": orders["drops"],
        "tickets": tickets,
        "seconds": seconds,
        "home": str(rt.home.root),
        "database": "embedded" if rt.embedded else rt.describe_database(),
        **summary.extra,
    }


def format_summary(result: dict) -> str:
    """A few readable lines: what came in, what was kept, how long each stage took."""
    tickets = result["tickets"]
    stages = ", ".join(
        f"{name} {secs:.1f}s" for name, secs in result["seconds"].items() if name != "total"
    )
    lines = [
        f"orders:  {result['order_drops']} drop(s), {result['rows_read']:,} rows read = "
        f"{result['rows_accepted']:,} accepted + {result['rows_rejected']:,} rejected; "
        f"{result['customers']:,} customers",
        f"tickets: {tickets['drops']} drop(s), {tickets['rows_read']:,} rows read = "
        f"{tickets['rows_accepted']:,} accepted + {tickets['rows_rejected']:,} rejected",
    ]
    for key in ("axes_fitted", "profiles_upserted", "snapshot_weeks"):
        if key in result:
            value = result[key]
            lines.append(f"{key}: {len(value) if isinstance(value, list | dict) else value}")
    lines.append(f"time:    {result['seconds']['total']:.1f}s ({stages})")
    lines.append(f"state:   {result['home']} (database: {result['database']})")
    return "\n".join(lines)
