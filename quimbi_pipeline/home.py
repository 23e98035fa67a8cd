"""The home folder: where a quimbi_pipeline installation keeps all of its local state."""

from dataclasses import dataclass
from pathlib import Path

DEFAULT_HOME = Path(".quimbi")


@dataclass(frozen=True)
class QuimbiHome:
    """Paths under one home folder (``--home``, env ``QUIMBI_HOME``, default ``./.quimbi``)."""

    root: Path

    @classmethod
    def at(cls, root: str | Path) -> "QuimbiHome":
        return cls(Path(root).expanduser().resolve())

    @property
    def landing(self) -> Path:
        """Drop CSV exports here; the landing sensor turns each new file into a partition."""
        return self.root / "landing"

    @property
    def lake(self) -> Path:
        """The parquet lake: one folder per asset."""
        return self.root / "lake"

    @property
    def registry(self) -> Path:
        """One JSON record per registered drop: file name, kind, layout and content hash."""
        return self.lake / "_drops"

    @property
    def pgdata(self) -> Path:
        """Data directory of the embedded PostgreSQL server."""
        return self.root / "pgdata"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    def raw_dir(self, kind: str, drop_id: str) -> Path:
        """The lake folder of one ingested drop (``accepted/``, ``rejected/``, manifest)."""
        return self.lake / f"raw_{kind}" / drop_id

    def asset_dir(self, name: str) -> Path:
        return self.lake / name

    def ensure(self) -> "QuimbiHome":
        for path in (self.landing, self.lake, self.registry, self.dagster_home):
            path.mkdir(parents=True, exist_ok=True)
        return self
