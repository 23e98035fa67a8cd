"""Assignment of every customer to every axis model, and their profiles in PostgreSQL."""

import threading
from concurrent.futures import Future, ThreadPoolExecutor

import dagster as dg
import polars as pl

from quimbi_pipeline.core.archetypes import top_archetypes
from quimbi_pipeline.core.assignment import (
    assign_batch,
    batch_rows,
    customer_batch,
    model_columns,
)
from quimbi_pipeline.core.axes import AXES
from quimbi_pipeline.db.models_store import load_current_models, model_set_version
from quimbi_pipeline.db.profiles_store import upsert_profile_batch
from quimbi_pipeline.defs.partitions import CUSTOMER_BATCHES, customer_batches
from quimbi_pipeline.defs.profiles.frames import (
    BatchOutcome,
    assignment_dir,
    profile_frame,
    read_batch,
    segment_distribution,
    write_batch,
)
from quimbi_pipeline.defs.resources import LakeResource, PostgresResource
from quimbi_pipeline.defs.segmentation.models import model_key
from quimbi_pipeline.feature_store import load_features, tickets_path

EVERY_AXIS_ASSIGNED = "every_applicable_axis_assigned"
# Batches assigned at once (threads: numpy and polars release the GIL).
ASSIGNERS = 2
# Connections writing profile batches at once: two keep both cores of a small machine busy.
PROFILE_WRITERS = 2
# Memory of a writer's session for its staging table (default 8MB). A batch of a 1M-customer
# shop stages 276MB of rows: at 256MB the whole table went through a temporary file, written
# once and read twice (upsert and prune). The server takes this memory only as the staging
# table grows, so a small shop uses no more than before.
STAGE_TEMP_BUFFERS = "1GB"


@dg.asset(
    partitions_def=customer_batches,
    deps=["customer_features", *[model_key(axis.name) for axis in AXES]],
    group_name="profiles",
    kinds={"numpy", "parquet"},
    backfill_policy=dg.BackfillPolicy.single_run(),
    automation_condition=dg.AutomationCondition.eager(),
)
def segment_assignments(
    context: dg.AssetExecutionContext, lake: LakeResource, postgres: PostgresResource
) -> dg.MaterializeResult:
    """Each customer's dominant segment, fuzzy memberships, strength and distance on every axis."""
    home = lake.paths()
    features = load_features(home).frame
    with postgres.connection() as conn:
        stored = load_current_models(conn)
    models = {axis: m.model for axis, m in stored.items() if m.model is not None}
    version = model_set_version(stored)
    # Only the columns the models read, gathered batch by batch.
    needed = dict.fromkeys(c for m in models.values() for c in model_columns(m))
    inputs = features.select("customer_id", *needed)
    rows = batch_rows(customer_batch(features["customer_id"], CUSTOMER_BATCHES), CUSTOMER_BATCHES)

    def assign(batch: int) -> int:
        part = inputs.select(pl.all().gather(rows[batch]))
        write_batch(home, batch, assign_batch(part, models), version)
        return part.height

    # Two batches at a time: much of a batch's work (JSON text, parquet) runs on one core.
    keys = [int(key) for key in context.partition_keys]
    with ThreadPoolExecutor(max_workers=min(ASSIGNERS, len(keys))) as pool:
        assigned = sum(pool.map(assign, keys))
    return dg.MaterializeResult(
        metadata={
            "customers_assigned": assigned,
            "batches": len(context.partition_keys),
            "axes_assigned": dg.MetadataValue.json(sorted(models)),
            "model_version": version,
            "dagster/row_count": assigned,
        }
    )


@dg.asset(
    partitions_def=customer_batches,
    deps=[segment_assignments],
    group_name="profiles",
    kinds={"postgres"},
    backfill_policy=dg.BackfillPolicy.single_run(),
    automation_condition=dg.AutomationCondition.eager(),
    pool="customer_profiles",
    check_specs=[
        dg.AssetCheckSpec(
            EVERY_AXIS_ASSIGNED,
            asset="customer_profiles",
            blocking=True,
            description="Every customer with orders has a segment on every applicable axis.",
        )
    ],
)
def customer_profiles(
    context: dg.AssetExecutionContext, lake: LakeResource, postgres: PostgresResource
) -> dg.MaterializeResult:
    """One PostgreSQL row per customer with segments, fuzzy memberships and value metrics."""
    home = lake.paths()
    features = load_features(home).frame
    ticket_only = _ticket_only_customers(home, features)
    with_orders = features.select(
        "customer_id", customer_batch(features["customer_id"], CUSTOMER_BATCHES)
    )
    with postgres.connection() as conn:
        axes = {axis for axis, m in load_current_models(conn).items() if m.model is not None}
    batches = [int(key) for key in context.partition_keys]

    # Frames built and not yet written: each writer has one in the server and one waiting.
    slots = threading.Semaphore(2 * PROFILE_WRITERS)

    def prepare(batch: int) -> tuple[int, pl.DataFrame, pl.DataFrame]:
        slots.acquire()
        # The long table only for the outcome's coverage and distribution: not the vectors.
        long, customers = read_batch(home, batch, ["customer_id", "axis", "dominant_segment"])
        return batch, long, profile_frame(batch, customers, features, ticket_only)

    def write(prepared: Future) -> BatchOutcome:
        try:
            batch, long, frame = prepared.result()
            with postgres.connection(temp_buffers=STAGE_TEMP_BUFFERS) as conn:
                counts = upsert_profile_batch(conn, batch, frame)
        finally:
            slots.release()
        ids = with_orders.filter(pl.col("batch") == batch)["customer_id"]
        return BatchOutcome.of(counts, frame, long, ids, axes)

    # Batches are independent transactions on their own connections. One thread reads and
    # joins the next batches while the writers' server sessions parse and store theirs, so a
    # writer seldom waits for its next frame.
    # Every write is submitted up front and none is cancelled when another fails (as map
    # would): each write frees its frame's slot, so the preparer can never wait for ever, and
    # a failed batch leaves the others written.
    writers = min(PROFILE_WRITERS, len(batches))
    with ThreadPoolExecutor(1) as preparer, ThreadPoolExecutor(writers) as pool:
        written = [pool.submit(write, preparer.submit(prepare, b)) for b in batches]
        outcomes = [future.result() for future in written]
    total = BatchOutcome.combine(outcomes)
    share = total.complete / total.segmented if total.segmented else 1.0
    return dg.MaterializeResult(
        metadata={
            "rows_upserted": total.rows_in_batch,
            "rows_changed": total.rows_upserted,
            "rows_removed": total.rows_removed,
            "no_orders": total.no_orders,
            "share_with_every_applicable_axis": round(share, 6),
            "segment_distribution": dg.MetadataValue.md(
                segment_distribution([o.distribution for o in outcomes])
            ),
            "dagster/row_count": total.rows_in_batch,
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=EVERY_AXIS_ASSIGNED,
                passed=share == 1.0,
                metadata={"share": share, "customers_with_orders": total.segmented},
            )
        ],
    )


def _ticket_only_customers(home, features: pl.DataFrame) -> pl.DataFrame:
    """Customers who contacted support but never ordered: profiles with null segments."""
    path = tickets_path(home)
    if not path.exists():
        return pl.DataFrame(schema={"customer_id": pl.String, "batch": pl.Int32})
    ids = pl.scan_parquet(path).select("customer_id").unique().collect()
    ids = ids.join(features.select("customer_id"), on="customer_id", how="anti")
    return ids.with_columns(customer_batch(ids["customer_id"], CUSTOMER_BATCHES))


@dg.asset(
    deps=[segment_assignments],
    group_name="profiles",
    kinds={"polars", "parquet"},
    automation_condition=dg.AutomationCondition.eager(),
)
def archetypes(lake: LakeResource) -> dg.MaterializeResult:
    """The most common combinations of dominant segments across axes, with their sizes."""
    home = lake.paths()
    files = sorted(assignment_dir(home).glob("batch_*/customers.parquet"))
    frame = pl.read_parquet(files, columns=["customer_id", "archetype_id", "archetype_signature"])
    frame = frame.rename({"archetype_signature": "signature"})
    top = top_archetypes(frame, n=20)
    out = home.asset_dir("archetypes")
    out.mkdir(parents=True, exist_ok=True)
    top.write_parquet(out / "top_archetypes.parquet")
    rows = "\n".join(
        f"| {r['archetype_id']} | {r['customers']} | {r['share']:.1%} | {r['signature']} |"
        for r in top.iter_rows(named=True)
    )
    return dg.MaterializeResult(
        metadata={
            "distinct_archetypes": frame["archetype_id"].n_unique(),
            "customers": frame.height,
            "top_archetypes": dg.MetadataValue.md(
                "| archetype | customers | share | signature |\n|---|---|---|---|\n" + rows
            ),
        }
    )
