"""Open psycopg 3 connections without ever exposing the connection string in errors."""

import psycopg

from quimbi_pipeline.db.urls import redact, scrub

APPLICATION_NAME = "quimbi_pipeline"


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    """Open a connection to ``url``; a failure is re-raised with the password masked.

    Args:
        url: A libpq URL (``postgresql://...``) or keyword/value connection string.
        autocommit: Leave False for the write helpers, which manage their own transactions;
            True is for statements that cannot run in a transaction (``CREATE DATABASE``).
    """
    try:
        return psycopg.connect(
            url,
            autocommit=autocommit,
            application_name=APPLICATION_NAME,
            # COPY sends UTF-8 text, whatever the server's default client encoding is.
            client_encoding="utf8",
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
