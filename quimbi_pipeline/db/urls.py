"""Connection-string helpers: redaction for logs and driver-specific URL forms.

A connection string is a secret (it may carry a password), so anything that shows one to a
person goes through ``redact`` first.
"""

import re
from urllib.parse import quote, unquote

from psycopg.conninfo import make_conninfo

MASK = "***"

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$", re.DOTALL)
# Query parameters and conninfo keywords that carry a secret (password, sslpassword).
_QUERY_SECRET = re.compile(r"(?P<key>(?:^|[?&])[^=&]*password=)(?P<value>[^&]*)", re.IGNORECASE)
_KEYWORD_SECRET = re.compile(
    r"(?P<key>\b\w*password\s*=\s*)(?P<value>'(?:\\.|[^'\\])*'|\S*)", re.IGNORECASE
)
_PSYCOPG2_SCHEMES = {
    "postgres",
    "postgresql",
    "postgresql+psycopg",
    "postgresql+psycopg2",
}


def _split(url: str) -> tuple[str, str, str, str] | None:
    """Split a URL into scheme, userinfo, the rest up to the query, and the query."""
    match = _SCHEME.match(url)
    if match is None:
        return None
    rest = match["rest"]
    before_query, mark, query = rest.partition("?")
    # The last "@" before the query ends the credentials, so a password holding an unencoded
    # "@" or "/" is still treated as part of the credentials (masked, never shown).
    userinfo, at, location = before_query.rpartition("@")
    if not at:
        userinfo, location = "", before_query
    return match["scheme"], userinfo, location, mark + query


def redact(url: str) -> str:
    """Return ``url`` with every password replaced by ``***``: ``postgresql://user:***@host/db``."""
    parts = _split(url)
    if parts is None:
        # libpq keyword/value form: ``host=... password=...``.
        return _KEYWORD_SECRET.sub(lambda m: m["key"] + MASK, url)
    scheme, userinfo, location, query = parts
    user, colon, password = userinfo.partition(":")
    credentials = f"{user}:{MASK}" if colon and password else user
    query = _QUERY_SECRET.sub(lambda m: m["key"] + MASK, query)
    return f"{scheme}://{credentials}{'@' if userinfo else ''}{location}{query}"


def secrets_in(url: str) -> list[str]:
    """Return the passwords in ``url`` (raw and percent-decoded) so messages can be scrubbed."""
    found: list[str] = []
    parts = _split(url)
    if parts is None:
        found += [m["value"].strip("'") for m in _KEYWORD_SECRET.finditer(url)]
    else:
        _, userinfo, _, query = parts
        found.append(userinfo.partition(":")[2])
        found += [m["value"] for m in _QUERY_SECRET.finditer(query)]
    values = {value for raw in found for value in (raw, unquote(raw))}
    # Longest first, so a password that contains another is replaced whole.
    return sorted((v for v in values if v), key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    """Return ``text`` (an error message, say) with any password of ``url`` masked."""
    for secret in secrets_in(url):
        text = text.replace(secret, MASK)
    return text


def sqlalchemy_psycopg2_url(url: str) -> str:
    """Return ``url`` as a SQLAlchemy URL that uses the psycopg2 driver (for Dagster's storage)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in _PSYCOPG2_SCHEMES:
        raise ValueError(f"not a PostgreSQL URL: {redact(url)}")
    return f"postgresql+psycopg2://{rest}"


def with_database(url: str, database: str) -> str:
    """Return ``url`` pointing at another database on the same server."""
    parts = _split(url)
    if parts is None:
        return make_conninfo(url, dbname=database)
    scheme, userinfo, location, query = parts
    host = location.partition("/")[0]
    credentials = f"{userinfo}@" if userinfo else ""
    return f"{scheme}://{credentials}{host}/{quote(database, safe='')}{query}"
