"""Resources: where the lake lives and which PostgreSQL holds the project's tables."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg

from quimbi_pipeline.db.connection import connect
from quimbi_pipeline.db.migrations import apply_migrations
from quimbi_pipeline.drops import DropRegistry
from quimbi_pipeline.home import QuimbiHome


class LakeResource(dg.ConfigurableResource):
    """The home folder: landing folder for drops and the parquet lake."""

    home: str

    def paths(self) -> QuimbiHome:
        return QuimbiHome.at(self.home).ensure()

    def registry(self) -> DropRegistry:
        return DropRegistry(self.paths())


class PostgresResource(dg.ConfigurableResource):
    """The PostgreSQL database that holds the project's tables (migrated before any write)."""

    url: str

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Migrations run before any asset writes; they are idempotent and serialised by an
        # advisory lock, so concurrent runs are safe.
        apply_migrations(self.url)

    @contextmanager
    def connection(self, **settings: str) -> Iterator[psycopg.Connection]:
        """A connection; ``settings`` are server settings for its session (``temp_buffers``)."""
        conn = connect(self.url, settings=settings)
        try:
            yield conn
        finally:
            conn.close()


def default_resources() -> dict[str, dg.ConfigurableResource]:
    """Resources read from the environment that `quimbi-pipeline run/dev` sets up."""
    return {
        "lake": LakeResource(home=dg.EnvVar("QUIMBI_HOME")),
        "postgres": PostgresResource(url=dg.EnvVar("DATABASE_URL")),
    }
