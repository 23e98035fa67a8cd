"""How well weekly drift finds the generator's planted behavior changes and churners (issue 5).

    python benchmarks/drift_quality.py [--customers 20000] [--seed 2] [--home DIR] [--json FILE]

Generates a shop (36 months), runs the pipeline up to the segment models (as
``bench_snapshots.py`` prepares a home), then takes a weekly snapshot at every week's end of
the history with the fitted models and the drift between consecutive weeks, with the same
core functions as the ``temporal_snapshots`` and ``drift_reports`` assets (no PostgreSQL
writes: only the lake's numbers are needed). Scored against ``ground_truth/customers.parquet``:

- changers (``change_date`` set): flagged if a weekly report dated in
  (change_date, change_date + 28 days], i.e. one of the 4 reports after the change, has drift
  MODERATE or worse (>= 0.3) on one of the customer's ``changed_axes`` ("on the axis"), or
  overall (mean over axes, "overall"). Changes in the last 4 weeks of the history are left
  out (not enough reports). A price or return change shows only in orders placed after it,
  so each changer is also scored from its first order after the change: flagged if a report
  dated in [that order's day, that day + 28 days) is MODERATE or worse on a changed axis
  ("from the first order after the change"; changers with no such order, or whose window
  runs past the history, are left out). The first order after the change need not show it:
  a new deal hunter's may carry no discount, a new returner's no refund. So each is scored
  the same way from its first order that shows the change ("from the first order showing
  it"): a discounted one for a price change, a refunded one for a returns change, and any
  order for the others.
- steady customers (no change, no churn, not a "growing" trajectory, first order at least 8
  weeks before the report): the share of their weekly reports with MODERATE or worse on any
  axis, or overall ("per report"), and the share of steady customers flagged at least once in
  the last 52 weeks ("per customer-year").
- churners (``churn_date`` set, with an order): the "90 days without an order" rule fires on
  last order + 90 days; drift fires on the first weekly report after the last order with
  MODERATE or worse on loyalty_trajectory or purchase_frequency, or overall. Lead = rule day
  - drift day (days earlier than the rule); churners whose rule day is after the history are
  left out. The leads are also given per purchase_frequency persona: a weekly shopper (10-day
  gaps) can be seen to be overdue weeks before the rule, an occasional one (180-day gaps)
  cannot.

Prints the numbers as markdown; ``--json`` writes them.
"""

import argparse
import json
import sys
import time
from datetime import timedelta
from pathlib import Path

import polars as pl
from bench_snapshots import prepare

from quimbi_pipeline.core.drift import (
    DRIFT_SUFFIX,
    customer_drift_wide,
    thumbprint_drift,
)
from quimbi_pipeline.core.snapshots import SnapshotSeries
from quimbi_pipeline.db.connection import connect
from quimbi_pipeline.db.models_store import load_current_models
from quimbi_pipeline.feature_store import orders_path, tickets_path
from quimbi_pipeline.home import QuimbiHome
from quimbi_pipeline.runner import PipelineRunner
from quimbi_pipeline.runtime import runtime

HERE = Path(__file__).resolve().parent
MODERATE = 0.3
WINDOW_DAYS = 28
RULE_DAYS = 90
CHURN_AXES = ("loyalty_trajectory", "purchase_frequency")
HORIZONS = (4, 13, 26)
# An order day that shows a changer's change: a discount for a price change, a refund for a
# returns change; any order day for the other changes.
SHOWS_CHANGE = (
    pl.when(pl.col("changed_axes").list.contains("price_sensitivity"))
    .then(pl.col("discounted"))
    .when(pl.col("changed_axes").list.contains("return_behavior"))
    .then(pl.col("refunded"))
    .otherwise(True)
)
ANY_ORDER = pl.lit(True)
# Segments follow tenure by design (new, established, veteran): a calendar effect, not drift.
CALENDAR_AXES = ("customer_maturity",)


def weekly_reports(
    home: QuimbiHome, models: dict, changers: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per customer and week: overall drift and every axis's drift since the week before.

    Also, for each changer, the drift on every axis from the last snapshot before its change
    to ``HORIZONS`` weeks later (how long the features take to show the change).
    """
    orders = pl.read_parquet(orders_path(home))
    tickets = pl.read_parquet(tickets_path(home)) if tickets_path(home).exists() else None
    first, last = orders["ordered_at"].min(), orders["ordered_at"].max()
    # Week ends (Saturdays), as the weekly partitions' last days.
    day = first.date() + timedelta(days=(5 - first.date().weekday()) % 7)
    series = SnapshotSeries(orders, tickets, models)
    # Last snapshot on or before the change day: the Saturday before (or of) it.
    base = changers.select(
        "customer_id",
        base_day=pl.col("change_date")
        - pl.duration(days=(pl.col("change_date").dt.weekday() + 1) % 7),
    )
    kept: dict = {}
    previous, reports, horizons = None, [], []
    while day <= last.date() + timedelta(days=6):
        current = series.take(day).wide()
        if previous is not None and previous.height:
            by_axis = thumbprint_drift(previous, current)
            summary = customer_drift_wide(by_axis)
            axes = [c for c in by_axis.columns if c.endswith(DRIFT_SUFFIX)]
            reports.append(
                summary.select("customer_id", "overall_drift")
                .with_columns(by_axis.select(axes))
                .with_columns(report_date=pl.lit(day))
            )
        kept[day] = current.join(changers.select("customer_id"), on="customer_id", how="semi")
        for weeks in HORIZONS:
            start = day - timedelta(days=7 * weeks)
            ids = base.filter(pl.col("base_day") == start).select("customer_id")
            if start in kept and ids.height:
                before = kept[start].join(ids, on="customer_id", how="semi")
                drift = thumbprint_drift(before, kept[day])
                axes = [c for c in drift.columns if c.endswith(DRIFT_SUFFIX)]
                horizons.append(drift.select("customer_id", *axes).with_columns(weeks=weeks))
        kept.pop(day - timedelta(days=7 * max(HORIZONS)), None)
        previous, day = current, day + timedelta(days=7)
    return pl.concat(reports, how="diagonal"), pl.concat(horizons, how="diagonal")


def axis_hit(axes: list[str]) -> pl.Expr:
    """Drift MODERATE or worse on any of ``axes`` (those the report has)."""
    return pl.any_horizontal(pl.col(a + DRIFT_SUFFIX).fill_null(0.0) >= MODERATE for a in axes)


def score(
    reports: pl.DataFrame,
    horizons: pl.DataFrame,
    truth: pl.DataFrame,
    order_days: pl.DataFrame,
) -> dict:
    axes = sorted(c[: -len(DRIFT_SUFFIX)] for c in reports.columns if c.endswith(DRIFT_SUFFIX))
    behavioral = [a for a in axes if a not in CALENDAR_AXES]
    end = reports["report_date"].max()
    flagged = reports.with_columns(
        any_axis=axis_hit(axes),
        behavioral_axis=axis_hit(behavioral),
        overall=pl.col("overall_drift").fill_null(0.0) >= MODERATE,
        churn_axes=axis_hit([a for a in CHURN_AXES if a in axes]),
    )
    results: dict[str, object] = {"end": str(end), "customers": truth.height}

    # Changers: one of the 4 reports after the change.
    changers = truth.filter(
        pl.col("change_date").is_not_null()
        & (pl.col("change_date") + timedelta(days=WINDOW_DAYS) <= end)
    ).select("customer_id", "change_date", "changed_axes")
    ordered = (
        order_days.join(changers, on="customer_id")
        .filter(
            (pl.col("day") > pl.col("change_date"))
            & (pl.col("day") <= pl.col("change_date") + timedelta(days=WINDOW_DAYS))
        )
        .select("customer_id")
        .unique()
    )
    window = flagged.join(changers, on="customer_id").filter(
        (pl.col("report_date") > pl.col("change_date"))
        & (pl.col("report_date") <= pl.col("change_date") + timedelta(days=WINDOW_DAYS))
    )
    per_changer = (
        window.with_columns(on_axis=on_changed_axis(axes))
        .group_by("customer_id", "changed_axes")
        .agg(pl.col("on_axis").any(), pl.col("overall").any(), pl.col("any_axis").any())
        .with_columns(
            kind=pl.col("changed_axes").list.join("+"),
            ordered=pl.col("customer_id").is_in(ordered["customer_id"].implode()),
        )
    )
    rates = [
        pl.len().alias("changers"),
        pl.col("on_axis").mean(),
        pl.col("overall").mean(),
        pl.col("any_axis").mean(),
        pl.col("ordered").mean().alias("with_order"),
        pl.col("on_axis").filter(pl.col("ordered")).mean().alias("on_axis_with_order"),
    ]
    after_order = first_order_window(flagged, changers, order_days, axes, end)
    showing = first_order_window(flagged, changers, order_days, axes, end, SHOWS_CHANGE)
    per_changer = per_changer.join(after_order, on="customer_id", how="left").join(
        showing.rename({"after_first_order": "after_showing_order"}), on="customer_id", how="left"
    )
    rates.append(pl.col("after_first_order").mean())
    rates.append(pl.col("after_first_order").count().alias("with_first_order"))
    rates.append(pl.col("after_showing_order").mean())
    rates.append(pl.col("after_showing_order").count().alias("with_showing_order"))
    by_kind = per_changer.group_by("kind").agg(rates).sort("kind")
    totals = per_changer.select(rates).row(0, named=True)
    reaction = (
        horizons.join(changers, on="customer_id")
        .with_columns(on_axis=on_changed_axis(axes), kind=pl.col("changed_axes").list.join("+"))
        .group_by("kind", "weeks")
        .agg(pl.col("on_axis").mean())
        .sort("kind", "weeks")
    )
    results["changers"] = {
        "count": per_changer.height,
        "flagged_on_changed_axis": totals["on_axis"],
        "flagged_overall": totals["overall"],
        "flagged_any_axis": totals["any_axis"],
        "with_an_order_in_window": totals["with_order"],
        "flagged_on_changed_axis_with_order": totals["on_axis_with_order"],
        "with_first_order_after_change": totals["with_first_order"],
        "flagged_on_changed_axis_from_first_order": totals["after_first_order"],
        "with_order_showing_change": totals["with_showing_order"],
        "flagged_on_changed_axis_from_order_showing_change": totals["after_showing_order"],
        "by_kind": by_kind.to_dicts(),
        "moderate_on_changed_axis_after_weeks": reaction.to_dicts(),
    }

    # Steady customers: no planted event, no growth, an established history.
    steady = truth.filter(
        pl.col("change_date").is_null()
        & pl.col("churn_date").is_null()
        & (pl.col("persona__loyalty_trajectory") == "steady")
        & pl.col("first_order_date").is_not_null()
    ).select("customer_id", "first_order_date")
    steady_reports = flagged.join(steady, on="customer_id").filter(
        pl.col("report_date") >= pl.col("first_order_date") + timedelta(days=56)
    )
    last_year = steady_reports.filter(pl.col("report_date") > end - timedelta(days=364))
    per_customer = last_year.group_by("customer_id").agg(
        pl.col("any_axis", "behavioral_axis", "overall").any()
    )
    results["steady"] = {
        "customers": per_customer.height,
        "reports": steady_reports.height,
        **{
            f"flagged_per_report_{c}": steady_reports[c].mean()
            for c in ("any_axis", "behavioral_axis", "overall")
        },
        **{
            f"flagged_per_customer_year_{c}": per_customer[c].mean()
            for c in ("any_axis", "behavioral_axis", "overall")
        },
        "by_axis_per_report": {
            a: steady_reports.select((pl.col(a + DRIFT_SUFFIX) >= MODERATE).mean()).item()
            for a in axes
        },
    }

    # Churners: the first flag once the last order is a week old, against the 90-day rule.
    last_order = order_days.group_by("customer_id").agg(pl.col("day").max().alias("last_order"))
    churners = (
        truth.filter(pl.col("churn_date").is_not_null())
        .join(last_order, on="customer_id")
        .with_columns(rule_date=pl.col("last_order") + timedelta(days=RULE_DAYS))
        .filter(pl.col("rule_date") <= end)
    )
    # Both snapshots of such a report hold the last order: what moves is time without orders.
    silent = flagged.join(churners, on="customer_id").filter(
        pl.col("report_date") - timedelta(days=7) >= pl.col("last_order")
    )
    leads = {
        flag: churn_leads(silent, churners, flag)
        for flag in ("churn_axes", "overall", "behavioral_axis")
    }
    by_persona = {
        persona: churn_leads(
            silent.filter(pl.col("persona__purchase_frequency") == persona),
            churners.filter(pl.col("persona__purchase_frequency") == persona),
            "churn_axes",
        )
        for persona in sorted(churners["persona__purchase_frequency"].unique().drop_nulls())
    }
    results["churners"] = {
        "count": churners.height,
        "leads": leads,
        "churn_axes_by_frequency_persona": by_persona,
    }
    return results


def churn_leads(silent: pl.DataFrame, churners: pl.DataFrame, flag: str) -> dict:
    """Share flagged (before the rule) and lead days of the first silent report with ``flag``."""
    first = (
        silent.filter(pl.col(flag))
        .group_by("customer_id")
        .agg(pl.col("report_date").min().alias("drift_date"), pl.col("rule_date").first())
        .with_columns(lead=(pl.col("rule_date") - pl.col("drift_date")).dt.total_days())
    )
    lead = first["lead"]
    return {
        "count": churners.height,
        "flagged_share": first.height / max(1, churners.height),
        "flagged_before_rule_share": int((lead > 0).sum()) / max(1, churners.height),
        "lead_days_q25": lead.quantile(0.25),
        "lead_days_median": lead.median(),
        "lead_days_q75": lead.quantile(0.75),
    }


def first_order_window(
    flagged: pl.DataFrame,
    changers: pl.DataFrame,
    order_days: pl.DataFrame,
    axes: list[str],
    end,
    shows: pl.Expr = ANY_ORDER,
) -> pl.DataFrame:
    """Per changer with an order after the change (and 28 days of reports after that order):
    ``after_first_order``, MODERATE+ on a changed axis in a report dated in [order day,
    order day + 28 days). ``shows``: only the order days it is true for count (default any;
    see ``SHOWS_CHANGE``)."""
    first_order = (
        order_days.join(changers, on="customer_id")
        .filter((pl.col("day") > pl.col("change_date")) & shows)
        .group_by("customer_id")
        .agg(pl.col("day").min().alias("first_order"))
        .filter(pl.col("first_order") + timedelta(days=WINDOW_DAYS) <= end)
    )
    window = (
        flagged.join(changers, on="customer_id")
        .join(first_order, on="customer_id")
        .filter(
            (pl.col("report_date") >= pl.col("first_order"))
            & (pl.col("report_date") < pl.col("first_order") + timedelta(days=WINDOW_DAYS))
        )
    )
    return (
        window.with_columns(on_axis=on_changed_axis(axes))
        .group_by("customer_id")
        .agg(pl.col("on_axis").any().alias("after_first_order"))
        .join(first_order.select("customer_id"), on="customer_id", how="right")
        .select("customer_id", pl.col("after_first_order").fill_null(False))
    )


def on_changed_axis(axes: list[str]) -> pl.Expr:
    """MODERATE or worse on one of the row's ``changed_axes``."""
    return pl.any_horizontal(
        pl.col("changed_axes").list.contains(pl.lit(a))
        & (pl.col(a + DRIFT_SUFFIX).fill_null(0.0) >= MODERATE)
        for a in axes
    )


def markdown(results: dict) -> str:
    ch, st, cu = results["changers"], results["steady"], results["churners"]

    def pct(x: float | None) -> str:
        return "-" if x is None else f"{100 * x:.1f}%"

    lines = [
        f"Shop: {results['customers']:,} customers, weekly reports to {results['end']}.",
        "",
        "| planted changers: MODERATE+ in the 4 weekly reports after the change | customers "
        "| on a changed axis | overall | any axis | with an order in the 4 weeks "
        "| on a changed axis, of those | with an order after the change "
        "| on a changed axis within 4 weeks of that order | with an order showing the change "
        "| on a changed axis within 4 weeks of that order |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        f"| all | {ch['count']:,} | {pct(ch['flagged_on_changed_axis'])} "
        f"| {pct(ch['flagged_overall'])} | {pct(ch['flagged_any_axis'])} "
        f"| {pct(ch['with_an_order_in_window'])} "
        f"| {pct(ch['flagged_on_changed_axis_with_order'])} "
        f"| {ch['with_first_order_after_change']:,} "
        f"| {pct(ch['flagged_on_changed_axis_from_first_order'])} "
        f"| {ch['with_order_showing_change']:,} "
        f"| {pct(ch['flagged_on_changed_axis_from_order_showing_change'])} |",
    ]
    for row in ch["by_kind"]:
        lines.append(
            f"| {row['kind']} | {row['changers']:,} | {pct(row['on_axis'])} "
            f"| {pct(row['overall'])} | {pct(row['any_axis'])} | {pct(row['with_order'])} "
            f"| {pct(row['on_axis_with_order'])} | {row['with_first_order']:,} "
            f"| {pct(row['after_first_order'])} | {row['with_showing_order']:,} "
            f"| {pct(row['after_showing_order'])} |"
        )
    lines += [
        "",
        "| changed axis MODERATE+ from the snapshot before the change to N weeks later "
        "| " + " | ".join(f"{w} weeks" for w in HORIZONS) + " |",
        "|---|" + "---|" * len(HORIZONS),
    ]
    reaction: dict[str, dict[int, float]] = {}
    for row in ch["moderate_on_changed_axis_after_weeks"]:
        reaction.setdefault(row["kind"], {})[row["weeks"]] = row["on_axis"]
    for kind, by_weeks in reaction.items():
        lines.append(f"| {kind} | " + " | ".join(pct(by_weeks.get(w)) for w in HORIZONS) + " |")
    lines += [
        "",
        "| steady customers flagged MODERATE+ | any axis | any axis but customer_maturity "
        "| overall |",
        "|---|---|---|---|",
        f"| per weekly report ({st['reports']:,} reports) | "
        f"{pct(st['flagged_per_report_any_axis'])} "
        f"| {pct(st['flagged_per_report_behavioral_axis'])} "
        f"| {pct(st['flagged_per_report_overall'])} |",
        f"| per customer, at least once in the last 52 weeks ({st['customers']:,}) | "
        f"{pct(st['flagged_per_customer_year_any_axis'])} "
        f"| {pct(st['flagged_per_customer_year_behavioral_axis'])} "
        f"| {pct(st['flagged_per_customer_year_overall'])} |",
        "",
        f"| churners ({cu['count']:,}): first MODERATE+ once the last order is a week old "
        "| flagged | before the 90-day rule | days earlier: q25 / median / q75 |",
        "|---|---|---|---|",
    ]
    rows = [*cu["leads"].items()] + [
        (f"churn_axes, {persona} ({lead['count']:,})", lead)
        for persona, lead in cu["churn_axes_by_frequency_persona"].items()
    ]
    for label, lead in rows:
        lines.append(
            f"| {label} | {pct(lead['flagged_share'])} | {pct(lead['flagged_before_rule_share'])} "
            f"| {lead['lead_days_q25']} / {lead['lead_days_median']} / {lead['lead_days_q75']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--home", type=Path, help="default benchmarks/work/drift_<N>/home")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    root = args.home or HERE / "work" / f"drift_{args.customers}" / "home"
    home = QuimbiHome.at(root).ensure()
    began = time.perf_counter()
    with runtime(home) as rt:
        runner = PipelineRunner(rt, log=lambda message: print(message, flush=True))
        prepare(runner, home, args.customers, args.seed)
        with connect(rt.database_url) as conn:
            stored = load_current_models(conn)
    models = {a: m.model for a, m in stored.items() if m.model is not None}
    truth = pl.read_parquet(home.root.parent / "shop" / "ground_truth" / "customers.parquet")
    changers = truth.filter(pl.col("change_date").is_not_null())
    reports, horizons = weekly_reports(home, models, changers)
    order_days = (
        pl.scan_parquet(orders_path(home))
        .group_by("customer_id", pl.col("ordered_at").dt.date().alias("day"))
        .agg(
            discounted=(pl.col("discount").fill_null(0.0) > 0).any(),
            refunded=(pl.col("refund").fill_null(0.0) > 0).any(),
        )
        .collect()
    )
    results = score(reports, horizons, truth, order_days)
    results["seconds"] = round(time.perf_counter() - began, 1)
    print(markdown(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
