"""The drop registry: which export files have become drops, and what exactly they contained.

A drop is one export file in the landing folder. Its id is its (sanitised) file name and it
is registered together with the SHA-256 of its bytes. A file whose content changes under a
name that is already registered is refused, never silently merged: the export has to come
back under a new name to become a new drop, so that every drop can always be rebuilt exactly.
"""

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from quimbi_pipeline.core.layouts import LayoutError, drop_kind, map_columns, sniff_layout
from quimbi_pipeline.core.source_file import IngestError, file_sha256, read_head
from quimbi_pipeline.home import QuimbiHome

# Dagster partition keys must not contain commas, brackets or spaces; keep ids readable.
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Dagster reads "..." in a partition key as a range ("a...b"), so dot runs become one dot.
_DOT_RUN = re.compile(r"\.{2,}")
_IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload")


class DropConflict(Exception):
    """A file's content differs from the drop already registered under its name."""


@dataclass(frozen=True)
class Drop:
    drop_id: str
    file_name: str
    kind: str
    layout: str
    sha256: str
    size: int


def drop_id_for(file_name: str) -> str:
    """The partition key for an export file name.

    Readable when the name has letters a partition key may hold; a name made only of other
    characters (``заказы``, say) gets a stable id derived from its hash instead.
    """
    cleaned = _DOT_RUN.sub(".", _UNSAFE.sub("_", file_name)).strip("._")
    if not cleaned:
        return "drop_" + hashlib.sha256(file_name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return cleaned


def is_candidate(path: Path) -> bool:
    """Whether a landing-folder entry looks like a finished export (not hidden, not partial)."""
    return (
        path.is_file()
        and not path.name.startswith(".")
        and not path.name.endswith(_IGNORED_SUFFIXES)
    )


class DropRegistry:
    """Reads and writes the per-drop JSON records under ``lake/_drops``."""

    def __init__(self, home: QuimbiHome):
        self.home = home.ensure()

    def _record_path(self, drop_id: str) -> Path:
        return self.home.registry / f"{drop_id}.json"

    def get(self, drop_id: str) -> Drop | None:
        path = self._record_path(drop_id)
        if not path.exists():
            return None
        return Drop(**json.loads(path.read_text()))

    def require(self, drop_id: str) -> Drop:
        drop = self.get(drop_id)
        if drop is None:
            raise KeyError(
                f"drop {drop_id!r} is not registered in {self.home.registry}; put the file in "
                f"{self.home.landing} or pass it to `quimbi-pipeline run`"
            )
        return drop

    def all(self, kind: str | None = None) -> list[Drop]:
        drops = [
            Drop(**json.loads(p.read_text())) for p in sorted(self.home.registry.glob("*.json"))
        ]
        return [d for d in drops if kind is None or d.kind == kind]

    def path_of(self, drop: Drop) -> Path:
        return self.home.landing / drop.file_name

    def register_landed(self, file_name: str) -> tuple[Drop, bool]:
        """Registers a file already in the landing folder; returns the drop and whether it is new.

        Raises:
            DropConflict: the name is registered with different content.
            IngestError: the file's layout cannot be recognised.
        """
        path = self.home.landing / file_name
        sha = file_sha256(path)
        drop_id = drop_id_for(file_name)
        existing = self.get(drop_id)
        if existing is not None:
            if existing.sha256 == sha and existing.file_name == file_name:
                return existing, False
            if existing.file_name != file_name:
                raise DropConflict(
                    f"{path}: refused: its drop id {drop_id!r} is already taken by the file "
                    f"{existing.file_name!r}. Rename the export to ingest it as a new drop."
                )
            raise DropConflict(
                f"{path}: refused: drop {drop_id!r} was registered from "
                f"{existing.file_name!r} with sha256 {existing.sha256[:12]}…, this file has "
                f"sha256 {sha[:12]}…. A drop is never silently merged with new content: save "
                f"the new export under a new file name to ingest it as a new drop."
            )
        layout = check_header(path)
        drop = Drop(drop_id, file_name, drop_kind(layout), layout, sha, path.stat().st_size)
        _write_atomically(self._record_path(drop_id), json.dumps(asdict(drop), indent=2))
        return drop, True

    def land(self, source: Path) -> tuple[Drop, bool]:
        """Copies an export into the landing folder (unless already there) and registers it.

        A file that cannot be ingested (unknown layout, missing column, empty) is refused before
        it is copied, so a corrected export of the same name can be landed afterwards.
        """
        source = source.resolve()
        target = self.home.landing / source.name
        if source != target.resolve():
            check_header(source)
            if target.exists() and file_sha256(target) != file_sha256(source):
                raise DropConflict(
                    f"{source}: refused: a different file named {source.name!r} is already in "
                    f"the landing folder {self.home.landing}. Rename the export to ingest it "
                    f"as a new drop."
                )
            if not target.exists():
                _copy_atomically(source, target)
        return self.register_landed(target.name)


def check_header(path: Path) -> str:
    """The layout of a file whose header has every column its layout requires.

    Raises:
        IngestError: at line 1, for an empty or binary file, an unknown layout or a header
            that lacks a required column.
    """
    layout = sniff_layout(path)
    if layout != "cdnow":
        try:
            map_columns(layout, read_head(path).first_record)
        except LayoutError as error:
            raise IngestError(path, 1, str(error)) from error
    return layout


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def _copy_atomically(source: Path, target: Path) -> None:
    # The landing sensor ignores dot-files, so a half-copied file is never picked up.
    tmp = target.with_name(f".{target.name}.copying")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
