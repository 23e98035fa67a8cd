"""Fixtures shared by the Dagster-tier tests of drops: a test instance and a home folder."""

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from quimbi_pipeline.defs.partitions import DROP_PARTITIONS
from quimbi_pipeline.home import QuimbiHome


@pytest.fixture(scope="module")
def _instance() -> Iterator[dg.DagsterInstance]:
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def instance(_instance: dg.DagsterInstance) -> dg.DagsterInstance:
    """The module's instance without the partitions earlier tests added (it is slow to build)."""
    for partitions in DROP_PARTITIONS.values():
        for key in _instance.get_dynamic_partitions(partitions.name):
            _instance.delete_dynamic_partition(partitions.name, key)
    return _instance


@pytest.fixture
def home(tmp_path: Path) -> QuimbiHome:
    return QuimbiHome.at(tmp_path / "home").ensure()
