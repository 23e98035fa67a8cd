"""Ingestion assets: each drop parsed into the lake, then all drops unioned."""

import json
from concurrent.futures import ThreadPoolExecutor

import dagster as dg
import polars as pl

from quimbi_pipeline.core.ingest import IngestError, IngestReport, file_sha256, ingest_file
from quimbi_pipeline.core.schema import ORDER_LINE_SCHEMA, TICKET_SCHEMA
from quimbi_pipeline.core.union import union_drops
from quimbi_pipeline.db.writes import upsert_frame
from quimbi_pipeline.defs.ingestion.metadata import drops_metadata
from quimbi_pipeline.defs.partitions import order_drops, ticket_drops
from quimbi_pipeline.defs.resources import LakeResource, PostgresResource

ROWS_ACCOUNTED = "rows_accounted_for"
# Drops of one run ingested at once.
INGEST_THREADS = 2


def _ingest_partitions(
    context: dg.AssetExecutionContext, lake: LakeResource, postgres: PostgresResource, kind: str
) -> dg.MaterializeResult:
    registry = lake.registry()
    home = lake.paths()

    def ingest(drop_id: str) -> IngestReport:
        drop = registry.require(drop_id)
        path = registry.path_of(drop)
        if drop.kind != kind:
            raise dg.Failure(f"{path}: drop {drop_id!r} holds {drop.kind}, not {kind}")
        if not path.exists():
            raise dg.Failure(
                f"{path}: the file of drop {drop_id!r} is no longer in the landing folder"
            )
        if file_sha256(path) != drop.sha256:
            raise dg.Failure(
                f"{path}: refused: the file changed since it was registered as drop {drop_id!r}; "
                "save the new export under a new file name to ingest it as a new drop"
            )
        try:
            return ingest_file(path, drop_id, home.raw_dir(kind, drop_id), layout=drop.layout)
        except IngestError as error:
            raise dg.Failure(description=str(error)) from error

    # Two drops at a time: each writes only its own folder, and much of a small file's time
    # is Python between polars calls. Reports come back in partition order, and the first
    # failure in that order fails the run.
    reports: list[IngestReport] = []
    with ThreadPoolExecutor(max_workers=INGEST_THREADS) as pool:
        for report in pool.map(ingest, context.partition_keys):
            context.log.info(
                f"{report.drop_id}: {report.rows_read} rows read, {report.rows_accepted} "
                f"accepted, {report.rows_rejected} rejected"
            )
            reports.append(report)
    _record_ledger(postgres, reports)
    for report in reports:
        # A range run records one materialization per drop: each shows its own drop's counts,
        # not the run's totals.
        accepted = home.raw_dir(kind, report.drop_id) / "accepted"
        context.add_asset_metadata(
            drops_metadata([report], [accepted]), partition_key=report.drop_id
        )
    balanced = all(r.rows_read == r.rows_accepted + r.rows_rejected for r in reports)
    return dg.MaterializeResult(
        check_results=[
            dg.AssetCheckResult(
                check_name=ROWS_ACCOUNTED,
                passed=balanced,
                metadata={
                    "drops": len(reports),
                    "rows_read": sum(r.rows_read for r in reports),
                    "rows_accepted": sum(r.rows_accepted for r in reports),
                    "rows_rejected": sum(r.rows_rejected for r in reports),
                },
            )
        ],
    )


def _record_ledger(postgres: PostgresResource, reports: list[IngestReport]) -> None:
    """Upserts one `drops` row per ingested file: the ledger users can query with SQL."""
    ledger = pl.DataFrame(
        {
            "drop_id": [r.drop_id for r in reports],
            "kind": [r.kind for r in reports],
            "layout": [r.layout for r in reports],
            "file_name": [r.path.name for r in reports],
            "sha256": [r.sha256 for r in reports],
            "rows_read": [r.rows_read for r in reports],
            "rows_accepted": [r.rows_accepted for r in reports],
            "rows_rejected": [r.rows_rejected for r in reports],
            "rejected_by_reason": [
                json.dumps(r.rejected_by_reason, sort_keys=True) for r in reports
            ],
            "customers": [r.customers for r in reports],
            "first_at": [r.first_at for r in reports],
            "last_at": [r.last_at for r in reports],
        },
        schema_overrides={"first_at": pl.Datetime("us"), "last_at": pl.Datetime("us")},
    )
    with postgres.connection() as conn:
        upsert_frame(conn, "drops", ledger, ["drop_id"])


def _rows_check(asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(
        ROWS_ACCOUNTED,
        asset=asset,
        description="Rows read = rows accepted + rows rejected for every drop in the run.",
    )


@dg.asset(
    partitions_def=order_drops,
    group_name="ingestion",
    kinds={"polars", "parquet", "postgres"},
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[_rows_check("raw_orders")],
)
def raw_orders(
    context: dg.AssetExecutionContext, lake: LakeResource, postgres: PostgresResource
) -> dg.MaterializeResult:
    """Each order export as canonical order lines; rejected rows kept with line and reason."""
    return _ingest_partitions(context, lake, postgres, "orders")


@dg.asset(
    partitions_def=ticket_drops,
    group_name="ingestion",
    kinds={"polars", "parquet", "postgres"},
    backfill_policy=dg.BackfillPolicy.single_run(),
    check_specs=[_rows_check("raw_tickets")],
)
def raw_tickets(
    context: dg.AssetExecutionContext, lake: LakeResource, postgres: PostgresResource
) -> dg.MaterializeResult:
    """Each support-ticket export as canonical tickets; rejected rows kept with their reason."""
    return _ingest_partitions(context, lake, postgres, "tickets")


def _union(lake: LakeResource, kind: str, schema: dict, time_column: str) -> dg.MaterializeResult:
    home = lake.paths()
    drops = [
        d
        for d in lake.registry().all(kind)
        if (home.raw_dir(kind, d.drop_id) / "manifest.json").exists()
    ]
    out = home.asset_dir(kind) / f"{kind}.parquet"
    report = union_drops([home.raw_dir(kind, d.drop_id) / "accepted" for d in drops], schema, out)
    summary = (
        pl.scan_parquet(out)
        .select(
            pl.col("customer_id").n_unique().alias("customers"),
            pl.col(time_column).min().alias("first"),
            pl.col(time_column).max().alias("last"),
        )
        .collect()
        .row(0, named=True)
    )
    return dg.MaterializeResult(
        metadata={
            "drops": report.drops,
            "rows": report.rows_out,
            "duplicates_removed": report.duplicates_removed,
            "customers": summary["customers"],
            "first": str(summary["first"]),
            "last": str(summary["last"]),
            "path": dg.MetadataValue.path(str(out)),
            "dagster/row_count": report.rows_out,
        }
    )


@dg.asset(
    deps=[raw_orders],
    group_name="ingestion",
    kinds={"polars", "parquet"},
    automation_condition=dg.AutomationCondition.eager(),
)
def orders(lake: LakeResource) -> dg.MaterializeResult:
    """All order lines of every ingested drop, without lines repeated by overlapping exports."""
    return _union(lake, "orders", ORDER_LINE_SCHEMA, "ordered_at")


@dg.asset(
    deps=[raw_tickets],
    group_name="ingestion",
    kinds={"polars", "parquet"},
    automation_condition=dg.AutomationCondition.eager(),
)
def tickets(lake: LakeResource) -> dg.MaterializeResult:
    """All support tickets of every ingested ticket drop, with repeated tickets removed."""
    return _union(lake, "tickets", TICKET_SCHEMA, "created_at")
