"""What a file is before it is parsed: its bytes' hash and encoding, and its first line."""

import codecs
import csv
import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

_CHUNK_BYTES = 8 << 20
HEAD_BYTES = 64 << 10
# The stdlib default (128 KiB) would turn a long product description into a parse error.
csv.field_size_limit(1 << 30)
_LATIN1_FALLBACK = "quimbi-latin1-fallback"


def _latin1_fallback(error: UnicodeError) -> tuple[str, int]:
    # cp1252 leaves five bytes undefined; latin-1 maps every byte, so nothing is dropped.
    assert isinstance(error, UnicodeDecodeError)
    return error.object[error.start : error.end].decode("latin-1"), error.end


codecs.register_error(_LATIN1_FALLBACK, _latin1_fallback)


class IngestError(Exception):
    """A file that cannot be read at all, with the line and the problem."""

    def __init__(self, path: Path, line: int | None, problem: str) -> None:
        self.path, self.line, self.problem = Path(path), line, problem
        where = f"{self.path}:{line}" if line is not None else f"{self.path}"
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class FileFacts:
    """What one streaming pass over the bytes learnt: hash, encoding and delimiter counts."""

    sha256: str
    size: int
    encoding: str
    newlines: int
    commas: int
    has_quotes: bool
    ends_with_newline: bool


@dataclass(frozen=True)
class Head:
    """The start of a file: its first physical line and first CSV record."""

    first_line: str
    first_record: list[str]
    record_lines: int


def scan_file(path: Path) -> FileFacts:
    """Hash the file and learn its encoding and newline/comma counts in one streaming pass."""
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    utf8, quotes, size, newlines, commas, last = True, False, 0, 0, 0, b""
    # hashlib releases the GIL, so hashing a chunk overlaps with counting it.
    with ThreadPoolExecutor(max_workers=1) as hasher:
        try:
            with path.open("rb") as stream:
                while chunk := stream.read(_CHUNK_BYTES):
                    hashed = hasher.submit(digest.update, chunk)
                    size += len(chunk)
                    newlines += chunk.count(b"\n")
                    commas += chunk.count(b",")
                    quotes = quotes or b'"' in chunk
                    last = chunk[-1:]
                    # ASCII needs no decoding unless a multi-byte character straddles chunks.
                    if utf8 and not (chunk.isascii() and not decoder.getstate()[0]):
                        try:
                            decoder.decode(chunk)
                        except UnicodeDecodeError:
                            utf8 = False
                    hashed.result()
            if utf8:
                decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            utf8 = False
        except OSError as error:
            raise IngestError(path, None, f"cannot read file: {error.strerror or error}") from error
    encoding = "utf-8" if utf8 else "cp1252"
    return FileFacts(digest.hexdigest(), size, encoding, newlines, commas, quotes, last == b"\n")


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        while chunk := stream.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def python_codec(encoding: str) -> tuple[str, str]:
    # utf-8-sig drops a byte-order mark so it does not end up in the first column name.
    return ("utf-8-sig", "strict") if encoding == "utf-8" else ("cp1252", _LATIN1_FALLBACK)


def read_head(path: Path, encoding: str | None = None) -> Head:
    """Read the first line and record; empty and binary files raise IngestError at line 1."""
    try:
        with path.open("rb") as stream:
            raw = stream.read(HEAD_BYTES)
    except OSError as error:
        raise IngestError(path, None, f"cannot read file: {error.strerror or error}") from error
    if not raw:
        raise IngestError(path, 1, "empty file (0 bytes)")
    controls = sum(raw.count(bytes([b])) for b in (*range(0, 9), *range(14, 32)))
    if b"\x00" in raw or controls > len(raw) // 100:
        raise IngestError(path, 1, "binary content (NUL or control bytes); expected a text CSV")
    if encoding is None:
        try:
            codecs.getincrementaldecoder("utf-8")().decode(raw, final=False)
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "cp1252"
    codec, errors = python_codec(encoding)
    text = codecs.getincrementaldecoder(codec)(errors=errors).decode(raw, final=False)
    if "\n" not in text and "\r" in text:
        raise IngestError(path, 1, "lines end in a bare CR (classic Mac); re-export with LF/CRLF")
    if "\n" not in text and len(raw) == HEAD_BYTES:
        raise IngestError(path, 1, f"no line break in the first {HEAD_BYTES} bytes; not a CSV")
    reader = csv.reader(io.StringIO(text, newline="\n"))
    try:
        record = next(reader, [])
    except csv.Error as error:
        raise IngestError(path, 1, f"cannot parse the first line: {error}") from error
    first_line = text.split("\n", 1)[0].rstrip("\r")
    return Head(first_line, record, max(reader.line_num, 1))


def transcode_to_utf8(path: Path, target: Path) -> Path:
    """Copy a cp1252/latin-1 file as UTF-8 (line structure unchanged) for the polars reader."""
    decoder = codecs.getincrementaldecoder("cp1252")(errors=_LATIN1_FALLBACK)
    with path.open("rb") as source, target.open("wb") as sink:
        while chunk := source.read(_CHUNK_BYTES):
            sink.write(decoder.decode(chunk).encode("utf-8"))
        sink.write(decoder.decode(b"", final=True).encode("utf-8"))
    return target
