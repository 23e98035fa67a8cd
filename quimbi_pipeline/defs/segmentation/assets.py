"""Features and the stratified sample: the inputs of every axis's segment model."""

from datetime import datetime

import dagster as dg
import polars as pl
from pydantic import Field

from quimbi_pipeline.core.axes import METRIC_COLUMNS
from quimbi_pipeline.core.features import compute_customer_features
from quimbi_pipeline.core.sampling import SampleConfig, sample_plan
from quimbi_pipeline.core.sampling import stratified_sample as draw_stratified_sample
from quimbi_pipeline.defs.ingestion.assets import orders, tickets
from quimbi_pipeline.defs.resources import LakeResource
from quimbi_pipeline.feature_store import (
    load_features,
    orders_path,
    sample_path,
    save_features,
    tickets_path,
)


class FeaturesConfig(dg.Config):
    as_of: str | None = Field(
        default=None,
        description="Compute features as of this date (ISO). Default: the latest order in the "
        "data, never the wall clock, so the same input always gives the same output.",
    )


@dg.asset(
    deps=[orders, tickets],
    group_name="segmentation",
    kinds={"polars", "parquet"},
    automation_condition=dg.AutomationCondition.eager(),
)
def customer_features(config: FeaturesConfig, lake: LakeResource) -> dg.MaterializeResult:
    """One row per customer: behavioral signals on 14 axes plus lifetime value and churn risk."""
    home = lake.paths()
    as_of = datetime.fromisoformat(config.as_of) if config.as_of else None
    ticket_lines = pl.scan_parquet(tickets_path(home)) if tickets_path(home).exists() else None
    features = compute_customer_features(
        pl.scan_parquet(orders_path(home)), ticket_lines, as_of=as_of
    )
    path = save_features(home, features)
    frame = features.frame
    numeric = frame.select(pl.exclude("customer_id"))
    not_finite = (
        numeric.select(
            pl.sum_horizontal(
                pl.all().is_nan().sum(), pl.all().is_infinite().sum(), pl.all().is_null().sum()
            )
        )
        .sum()
        .item()
        if numeric.width
        else 0
    )
    rows = "\n".join(
        f"| {a.axis} | {'yes' if a.applicable else 'no'} | {a.source} | {a.reason or ''} |"
        for a in features.applicability.values()
    )
    return dg.MaterializeResult(
        metadata={
            "customers": frame.height,
            "as_of": features.as_of.isoformat(),
            "axes_applicable": sum(a.applicable for a in features.applicability.values()),
            "applicability": dg.MetadataValue.md(
                "| axis | applicable | source | reason |\n|---|---|---|---|\n" + rows
            ),
            "non_finite_values": int(not_finite),
            "metrics_summary": dg.MetadataValue.md(_describe(frame, METRIC_COLUMNS)),
            "path": dg.MetadataValue.path(str(path)),
            "dagster/row_count": frame.height,
        }
    )


def _describe(frame: pl.DataFrame, columns: tuple[str, ...]) -> str:
    lines = ["| metric | p10 | median | p90 |", "|---|---|---|---|"]
    for column in columns:
        values = frame[column]
        lines.append(
            f"| {column} | {values.quantile(0.1):.2f} | {values.median():.2f} "
            f"| {values.quantile(0.9):.2f} |"
        )
    return "\n".join(lines)


class SampleRunConfig(dg.Config):
    total: int = Field(default=5000, description="Customers in the sample.")
    vip_share: float = Field(default=0.2, description="Share of the sample from the top 5% LTV.")
    high_share: float = Field(default=0.3, description="Share from the 80-95th LTV percentile.")
    mid_share: float = Field(default=0.3, description="Share from the 50-80th LTV percentile.")
    low_share: float = Field(default=0.2, description="Share from below the LTV median.")
    seed: int = 0


@dg.asset(deps=[customer_features], group_name="segmentation", kinds={"polars", "parquet"})
def stratified_sample(config: SampleRunConfig, lake: LakeResource) -> dg.MaterializeResult:
    """Customers drawn by lifetime-value tier (VIP, high, mid, low) to fit segment models on."""
    home = lake.paths()
    features = load_features(home)
    sample_config = SampleConfig(
        total=config.total,
        shares={
            "vip": config.vip_share,
            "high": config.high_share,
            "mid": config.mid_share,
            "low": config.low_share,
        },
    )
    metrics = features.frame.select("customer_id", "lifetime_value")
    sample = draw_stratified_sample(metrics, sample_config, seed=config.seed)
    path = sample_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(".sample.parquet.tmp")
    sample.write_parquet(tmp)
    tmp.replace(path)
    sizes = dict(sample.group_by("value_tier").len().iter_rows())
    plan = sample_plan(metrics, sample_config)
    rows = "\n".join(
        f"| {tier} | {population} | {requested} | {sampled} |"
        for tier, population, requested, sampled in plan.iter_rows()
    )
    return dg.MaterializeResult(
        metadata={
            "sample_size": sample.height,
            "requested_total": config.total,
            "population": features.frame.height,
            "tier_sizes": dg.MetadataValue.json(
                {t: int(sizes.get(t, 0)) for t in sample_config.shares}
            ),
            "tier_plan": dg.MetadataValue.md(
                "Each tier asks for its share of the total and gets at most its population.\n\n"
                "| tier | population | requested | sampled |\n|---|---|---|---|\n" + rows
            ),
            "seed": config.seed,
            "dagster/row_count": sample.height,
        }
    )
