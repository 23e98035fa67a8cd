"""Find the project's ``sql/`` folder and read the named statements kept in it."""

import functools
import re
from pathlib import Path

# A statement starts at a "-- name: <name>" line and runs to the next one.
_NAME_LINE = re.compile(r"^--\s*name:\s*(?P<name>\w+)\s*$", re.MULTILINE)


def sql_dir() -> Path:
    """Return the ``sql`` folder: the wheel's packaged copy if present, else the checkout's."""
    package = Path(__file__).resolve().parents[1]
    packaged = package / "_sql"
    if packaged.is_dir():
        return packaged
    return package.parent / "sql"


@functools.cache
def named_statements(relative_path: str) -> dict[str, str]:
    """Return the statements of ``sql/<relative_path>`` by name, without trailing semicolons."""
    text = (sql_dir() / relative_path).read_text(encoding="utf-8")
    matches = list(_NAME_LINE.finditer(text))
    if not matches:
        raise ValueError(f"no '-- name:' sections in sql/{relative_path}")
    statements: dict[str, str] = {}
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following is not None else len(text)
        body = text[match.end() : end].strip().rstrip(";").strip()
        if match["name"] in statements:
            raise ValueError(f"statement {match['name']!r} is defined twice in sql/{relative_path}")
        statements[match["name"]] = body
    return statements


def statement(relative_path: str, name: str) -> str:
    """Return one named statement from ``sql/<relative_path>``."""
    statements = named_statements(relative_path)
    if name not in statements:
        raise KeyError(f"no statement {name!r} in sql/{relative_path}")
    return statements[name]
