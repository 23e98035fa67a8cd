"""customer_features -> stratified_sample -> segment_models (+ checks) through dg.materialize.

The lake is prepared by ingesting the session's generated ``small_shop`` (400 customers over
12 months) with the real ingest and union code; the models are written to a real PostgreSQL.
One full run, shared by the read-only tests below, runs in a database of this module's own
(created like conftest's ``pipeline_run``): it is the expensive part. The tests that change
state (reruns, a tiny shop) use ``clean_db``.

Dagster writes every event to the test instance's SQLite storage with a commit each; on a
shared disk that was most of a run's time, so the instance lives on tmpfs when there is one.
"""

import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from psycopg import sql

from quimbi_pipeline.core.axes import AXES
from quimbi_pipeline.core.generator import GenerateReport, generate_shop
from quimbi_pipeline.db.connection import connect
from quimbi_pipeline.db.models_store import load_current_models
from quimbi_pipeline.db.urls import with_database
from quimbi_pipeline.defs.resources import LakeResource, PostgresResource
from quimbi_pipeline.defs.segmentation.assets import customer_features, stratified_sample
from quimbi_pipeline.defs.segmentation.checks import SAMPLING_FIDELITY, sampling_fidelity
from quimbi_pipeline.defs.segmentation.models import (
    AT_LEAST_TWO_SEGMENTS,
    LARGEST_SEGMENT_SHARE,
    NO_NAN_CENTRES,
    model_key,
    segment_models,
)
from quimbi_pipeline.feature_store import load_features, orders_path, sample_path, tickets_path
from quimbi_pipeline.home import QuimbiHome
from quimbi_pipeline_tests.datasets import ingest_to_lake

ASSETS = [customer_features, stratified_sample, segment_models, sampling_fidelity]
# Shares and total chosen so that every request is a whole number (30/60/90/120) and the two
# upper tiers of a 400-customer shop (about 20 and 60 customers) cap theirs.
SAMPLE_CONFIG = {
    "total": 300,
    "vip_share": 0.1,
    "high_share": 0.2,
    "mid_share": 0.3,
    "low_share": 0.4,
}
REQUESTED = {"vip": 30, "high": 60, "mid": 90, "low": 120}
TWO_AXES = [model_key("purchase_frequency"), model_key("price_sensitivity")]


def make_home(root: Path, shop: GenerateReport, order_files: list[Path] | None = None) -> Path:
    """A home whose lake holds the shop's orders and tickets as the ingestion assets write them."""
    home = QuimbiHome.at(root).ensure()
    files = [*(shop.order_files if order_files is None else order_files), *shop.ticket_files]
    ingest_to_lake(files, root / "ingested", orders_path(home), tickets_path(home))
    return home.root


def materialize(
    instance: dg.DagsterInstance,
    home: Path,
    url: str,
    selection: list[dg.AssetKey] | None = None,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        ASSETS,
        instance=instance,
        resources={"lake": LakeResource(home=str(home)), "postgres": PostgresResource(url=url)},
        run_config=(
            {"ops": {"stratified_sample": {"config": SAMPLE_CONFIG}}}
            if selection is None or stratified_sample.key in selection
            else None
        ),
        selection=selection,
    )


def metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, object]]:
    """Asset key (as a string) -> its materialization metadata as plain values."""
    return {
        event.materialization.asset_key.to_user_string(): {
            key: value.value for key, value in event.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }


def checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e
        for e in result.get_asset_check_evaluations()
    }


def model_rows(url: str) -> list[tuple[str, int, str, str | None]]:
    with connect(url) as conn:
        return conn.execute(
            "SELECT axis, version, status, reason FROM segment_models ORDER BY axis, version"
        ).fetchall()


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    shm = Path("/dev/shm")
    with (
        tempfile.TemporaryDirectory(dir=shm if shm.is_dir() else None) as folder,
        dg.instance_for_test(temp_dir=folder) as test_instance,
    ):
        yield test_instance


@pytest.fixture(scope="module")
def module_db(database_url: str) -> Iterator[str]:
    """A database of this module's own (named so conftest's stale cleanup would find it)."""
    name = f"test_{int(time.time())}_{uuid.uuid4().hex[:8]}"
    with connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield with_database(database_url, name)
    with connect(database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@dataclass(frozen=True)
class FullRun:
    home: Path
    url: str
    result: dg.ExecuteInProcessResult


@pytest.fixture(scope="module")
def full_run(
    small_shop: GenerateReport,
    instance: dg.DagsterInstance,
    module_db: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> FullRun:
    home = make_home(tmp_path_factory.mktemp("segmentation_home"), small_shop)
    return FullRun(home, module_db, materialize(instance, home, module_db))


def test_every_axis_shows_k_quality_names_sizes_and_the_k_search(full_run: FullRun) -> None:
    assert full_run.result.success
    shown = metadata(full_run.result)
    sample_size = shown["stratified_sample"]["sample_size"]
    with connect(full_run.url) as conn:
        stored = load_current_models(conn)
    for ax in AXES:
        meta = shown[model_key(ax.name).to_user_string()]
        assert meta["status"] == "active", (ax.name, meta.get("reason"))
        assert meta["model_version"] == stored[ax.name].version == 1
        model = stored[ax.name].model
        assert meta["k"] == model.k >= 2
        assert -1.0 <= meta["silhouette"] <= 1.0 and 0.0 <= meta["balance"] <= 1.0
        assert meta["segment_names"] == model.segment_names
        assert meta["segment_sizes"] == dict(
            zip(model.segment_names, model.segment_sizes, strict=True)
        )
        assert sum(meta["segment_sizes"].values()) == sample_size == model.sample_size
        assert meta["largest_segment_share"] == pytest.approx(
            max(model.segment_sizes) / sample_size
        )
        # the k-search table: a header, a rule and one row per k tried (2..6 by default)
        table = meta["k_search"].splitlines()
        assert table[0].startswith("| k | silhouette | balance | score")
        assert [row.split("|")[1].strip() for row in table[2:]] == ["2", "3", "4", "5", "6"]
        assert all(name in meta["segments_table"] for name in model.segment_names)


def test_the_checks_run_on_every_axis(full_run: FullRun) -> None:
    evaluations = checks(full_run.result)
    shown = metadata(full_run.result)
    for ax in AXES:
        key = model_key(ax.name).to_user_string()
        assert evaluations[(key, NO_NAN_CENTRES)].passed
        two = evaluations[(key, AT_LEAST_TWO_SEGMENTS)]
        assert two.passed and two.metadata["segments"].value >= 2
        largest = evaluations[(key, LARGEST_SEGMENT_SHARE)]
        share = largest.metadata["largest_share"].value
        assert share == pytest.approx(shown[key]["largest_segment_share"], abs=1e-4)
        assert largest.passed == (share <= largest.metadata["limit"].value)


def test_sampling_fidelity_reports_agreement_on_held_out_customers(full_run: FullRun) -> None:
    evaluations = checks(full_run.result)
    population = metadata(full_run.result)["stratified_sample"]["population"]
    sample_size = metadata(full_run.result)["stratified_sample"]["sample_size"]
    agreements = []
    for ax in AXES:
        fidelity = evaluations[(model_key(ax.name).to_user_string(), SAMPLING_FIDELITY)]
        shown = {k: v.value for k, v in fidelity.metadata.items()}
        assert shown["held_out_customers"] == population - sample_size
        assert shown["population_fit_customers"] == population
        assert fidelity.passed == (shown["agreement"] >= shown["threshold"])
        agreements.append(shown["agreement"])
    # a 300-customer sample of 400 and the population agree on most held-out customers
    assert all(0.0 <= a <= 1.0 for a in agreements)
    assert np.median(agreements) >= 0.9


def test_sample_tiers_follow_the_config_capped_by_population(full_run: FullRun) -> None:
    shown = metadata(full_run.result)["stratified_sample"]
    lifetime_value = load_features(QuimbiHome.at(full_run.home)).frame["lifetime_value"]
    values = lifetime_value.to_numpy()
    cuts = np.percentile(values, [50, 80, 95])
    population = {
        "vip": int((values >= cuts[2]).sum()),
        "high": int(((values >= cuts[1]) & (values < cuts[2])).sum()),
        "mid": int(((values >= cuts[0]) & (values < cuts[1])).sum()),
        "low": int((values < cuts[0]).sum()),
    }
    expected = {tier: min(REQUESTED[tier], population[tier]) for tier in REQUESTED}
    assert population["vip"] < REQUESTED["vip"]  # the cap is exercised
    assert expected["mid"] == REQUESTED["mid"]  # and so is a full request
    assert shown["tier_sizes"] == expected
    assert shown["sample_size"] == sum(expected.values()) < SAMPLE_CONFIG["total"]
    sample = pl.read_parquet(sample_path(QuimbiHome.at(full_run.home)))
    assert dict(sample.group_by("value_tier").len().iter_rows()) == expected
    for tier, count in expected.items():
        assert (
            f"| {tier} | {population[tier]} | {REQUESTED[tier]} | {count} |" in (shown["tier_plan"])
        )


def test_models_are_versioned_rows(
    small_shop: GenerateReport,
    instance: dg.DagsterInstance,
    clean_db: str,
    tmp_path: Path,
) -> None:
    home = make_home(tmp_path / "home", small_shop)
    selection = [customer_features.key, stratified_sample.key, *TWO_AXES]
    assert materialize(instance, home, clean_db, selection).success
    first = model_rows(clean_db)
    assert [(axis, version, status) for axis, version, status, _ in first] == [
        ("price_sensitivity", 1, "active"),
        ("purchase_frequency", 1, "active"),
    ]

    # Same data, models only: identical fits keep their version, no row is added.
    assert materialize(instance, home, clean_db, TWO_AXES).success
    assert model_rows(clean_db) == first

    # Changed data (the last month's orders are missing): version 2, version 1 retired.
    changed = make_home(tmp_path / "changed", small_shop, small_shop.order_files[:-1])
    result = materialize(instance, changed, clean_db, selection)
    assert result.success
    assert [(axis, version, status) for axis, version, status, _ in model_rows(clean_db)] == [
        ("price_sensitivity", 1, "retired"),
        ("price_sensitivity", 2, "active"),
        ("purchase_frequency", 1, "retired"),
        ("purchase_frequency", 2, "active"),
    ]
    shown = metadata(result)
    assert all(shown[key.to_user_string()]["model_version"] == 2 for key in TWO_AXES)


def test_a_shop_of_a_few_dozen_customers_materializes(
    instance: dg.DagsterInstance, clean_db: str, tmp_path: Path
) -> None:
    shop = generate_shop(24, tmp_path / "tiny", seed=5, months=12)
    home = make_home(tmp_path / "home", shop)
    result = materialize(instance, home, clean_db)
    assert result.success
    customers = metadata(result)["customer_features"]["customers"]
    assert 12 <= customers < 30  # fewer than an axis model needs
    shown = metadata(result)
    rows = {axis: (status, reason) for axis, _, status, reason in model_rows(clean_db)}
    assert set(rows) == {a.name for a in AXES}
    for ax in AXES:
        meta = shown[model_key(ax.name).to_user_string()]
        assert meta["status"] == rows[ax.name][0] == "not_applicable"
        assert meta["reason"] == rows[ax.name][1]
        assert meta["reason"], ax.name
    # every axis has its inputs here; what stops each is the customer count, and it says so
    assert all(r[1] == f"only {customers} customers (need 30)" for r in rows.values())
    evaluations = checks(result)
    assert all(e.passed for e in evaluations.values())
    fidelity = evaluations[(model_key("purchase_frequency").to_user_string(), SAMPLING_FIDELITY)]
    assert "not_applicable" in fidelity.metadata
