"""The landing sensor: every new export file in the landing folder becomes a drop partition."""

import json

import dagster as dg

from quimbi_pipeline.core.ingest import IngestError
from quimbi_pipeline.defs.ingestion.assets import raw_orders, raw_tickets
from quimbi_pipeline.defs.partitions import DROP_PARTITIONS
from quimbi_pipeline.defs.resources import LakeResource
from quimbi_pipeline.drops import DropConflict, is_candidate

INGEST_ASSETS = {"orders": raw_orders.key, "tickets": raw_tickets.key}


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    asset_selection=[raw_orders, raw_tickets],
)
def landing_sensor(context: dg.SensorEvaluationContext, lake: LakeResource) -> dg.SensorResult:
    """Adds one drop partition per new file in the landing folder and requests its ingestion.

    The cursor remembers each file's size and modification time, so a file is hashed again
    only when it changed. A changed file under a registered name is refused (logged), never
    merged into the drop it replaced.
    """
    seen: dict[str, list[int]] = json.loads(context.cursor) if context.cursor else {}
    registry = lake.registry()
    new_keys: dict[str, list[str]] = {kind: [] for kind in DROP_PARTITIONS}
    run_requests: list[dg.RunRequest] = []
    refused: list[str] = []
    for path in sorted(registry.home.landing.iterdir()):
        if not is_candidate(path):
            continue
        try:
            stat = path.stat()
            fingerprint = [stat.st_size, stat.st_mtime_ns]
            if seen.get(path.name) == fingerprint:
                continue
            seen[path.name] = fingerprint
            drop, is_new = registry.register_landed(path.name)
        # One unreadable file (gone, no permission) must not stop every other drop's ingestion.
        except (DropConflict, IngestError, OSError) as problem:
            context.log.error(str(problem))
            refused.append(str(problem))
            continue
        if not is_new and context.instance.has_dynamic_partition(
            DROP_PARTITIONS[drop.kind].name, drop.drop_id
        ):
            continue
        new_keys[drop.kind].append(drop.drop_id)
        run_requests.append(
            dg.RunRequest(
                run_key=f"{drop.drop_id}:{drop.sha256[:16]}",
                partition_key=drop.drop_id,
                asset_selection=[INGEST_ASSETS[drop.kind]],
            )
        )
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[
            DROP_PARTITIONS[kind].build_add_request(keys) for kind, keys in new_keys.items() if keys
        ],
        cursor=json.dumps(seen, sort_keys=True),
        skip_reason=None if run_requests else _skip_reason(refused),
    )


def _skip_reason(refused: list[str]) -> str:
    if refused:
        return f"{len(refused)} file(s) refused: " + "; ".join(refused)
    return "no new files in the landing folder"
