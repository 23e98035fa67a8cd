"""The runtime environment of `run` and `dev`: home folder, database and Dagster instance."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from quimbi_pipeline.db.embedded import EmbeddedPostgres
from quimbi_pipeline.db.migrations import apply_migrations
from quimbi_pipeline.db.urls import redact, sqlalchemy_psycopg2_url
from quimbi_pipeline.home import QuimbiHome

_PACKAGE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Runtime:
    home: QuimbiHome
    database_url: str
    dagster_storage_url: str
    embedded: bool

    def describe_database(self) -> str:
        """Where the tables are, for people: never the full connection string."""
        if self.embedded:
            return f"embedded PostgreSQL in {self.home.pgdata}"
        return redact(self.database_url)

    def env(self) -> dict[str, str]:
        """Environment variables the code location, webserver and daemon read."""
        return {
            "QUIMBI_HOME": str(self.home.root),
            "DATABASE_URL": self.database_url,
            "DAGSTER_HOME": str(self.home.dagster_home),
            "QUIMBI_DAGSTER_STORAGE_URL": self.dagster_storage_url,
        }


def dagster_yaml_template() -> Path:
    """The instance settings: packaged copy in a wheel, the repository's file in a checkout."""
    for candidate in (_PACKAGE / "_instance" / "dagster.yaml", _PACKAGE.parent / "dagster.yaml"):
        if candidate.exists():
            return candidate
    raise FileNotFoundError("dagster.yaml is missing from the installation")


def resolve_home(home: str | Path | None) -> QuimbiHome:
    """``--home``, else env QUIMBI_HOME, else ./.quimbi."""
    return QuimbiHome.at(home or os.environ.get("QUIMBI_HOME") or ".quimbi").ensure()


@contextmanager
def runtime(home: QuimbiHome, database_url: str | None = None) -> Iterator[Runtime]:
    """Starts the embedded database unless a URL is given, prepares DAGSTER_HOME and the env.

    The embedded server is stopped when the block exits (also on SIGTERM, which the embedded
    server's handler turns into a normal exit), so no server is left running.
    """
    url = database_url or os.environ.get("DATABASE_URL")
    embedded = None if url else EmbeddedPostgres(home.pgdata)
    if embedded is not None:
        embedded.start()
    try:
        if embedded is not None:
            rt = Runtime(home, embedded.url("quimbi"), embedded.dagster_storage_url(), True)
        else:
            rt = Runtime(home, url, sqlalchemy_psycopg2_url(url), False)
        _install_instance_yaml(home)
        apply_migrations(rt.database_url)
        previous = {key: os.environ.get(key) for key in rt.env()}
        os.environ.update(rt.env())
        try:
            yield rt
        finally:
            for key, value in previous.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    finally:
        if embedded is not None:
            embedded.stop()


STORAGE_BLOCK = """
# Added by quimbi-pipeline: Dagster's own storage in PostgreSQL (URL from the environment).
storage:
  postgres:
    postgres_url:
      env: QUIMBI_DAGSTER_STORAGE_URL
"""


def _install_instance_yaml(home: QuimbiHome) -> None:
    target = home.dagster_home / "dagster.yaml"
    text = dagster_yaml_template().read_text() + STORAGE_BLOCK
    if not target.exists() or target.read_text() != text:
        target.write_text(text)
