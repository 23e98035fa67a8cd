"""Open psycopg 3 connections without ever exposing the connection string in errors."""

from collections.abc import Mapping

import psycopg
from psycopg.conninfo import conninfo_to_dict

from quimbi_pipeline.db.urls import redact, scrub

APPLICATION_NAME = "quimbi_pipeline"


def connect(
    url: str, *, autocommit: bool = False, settings: Mapping[str, str] | None = None
) -> psycopg.Connection:
    """Open a connection to ``url``; a failure is re-raised with the password masked.

    Args:
        url: A libpq URL (``postgresql://...``) or keyword/value connection string.
        autocommit: Leave False for the write helpers, which manage their own transactions;
            True is for statements that cannot run in a transaction (``CREATE DATABASE``).
        settings: server settings for this session, sent at connect time (``-c name=value``)
            after any ``options`` the URL holds; for settings such as ``temp_buffers`` that
            cannot change once the session has used a temporary table.
    """
    try:
        options = conninfo_to_dict(url).get("options") or ""
        for name, value in (settings or {}).items():
            options += f" -c {name}={value}"
        return psycopg.connect(
            url,
            autocommit=autocommit,
            application_name=APPLICATION_NAME,
            # COPY sends UTF-8 text, whatever the server's default client encoding is.
            client_encoding="utf8",
            **({"options": options.strip()} if options.strip() else {}),
        )
    except psycopg.Error as error:
        failure = error
    # Raised outside the except block so the original exception, whose message may quote the
    # connection string, is not chained into the traceback.
    message = f"could not connect to {redact(url)}: {scrub(str(failure), url)}"
    try:
        redacted = type(failure)(message)
    except TypeError:
        redacted = psycopg.OperationalError(message)
    raise redacted
