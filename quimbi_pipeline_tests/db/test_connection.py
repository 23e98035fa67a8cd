"""Connections: the session settings the write helpers rely on, and errors that keep secrets."""

import psycopg
import pytest

from quimbi_pipeline.db.connection import APPLICATION_NAME, connect


def test_connect_sets_application_name_and_leaves_autocommit_off(clean_db: str) -> None:
    with connect(clean_db) as conn:
        assert conn.autocommit is False
        row = conn.execute(
            "SELECT current_setting('application_name'), current_setting('client_encoding')"
        ).fetchone()
    assert row == (APPLICATION_NAME, "UTF8")


def test_session_settings_are_applied_after_the_url_options(clean_db: str) -> None:
    separator = "&" if "?" in clean_db else "?"
    url = f"{clean_db}{separator}options=-c%20statement_timeout%3D4321"
    with connect(url, settings={"temp_buffers": "64MB", "work_mem": "7MB"}) as conn:
        row = conn.execute(
            "SELECT current_setting('statement_timeout'), current_setting('temp_buffers'), "
            "current_setting('work_mem')"
        ).fetchone()
    assert row == ("4321ms", "64MB", "7MB")


def test_connection_error_shows_the_url_redacted_never_the_password() -> None:
    # Port 1 on localhost refuses at once; the password must not leak into the message.
    url = "postgresql://someone:s3cret-pw@127.0.0.1:1/quimbi?connect_timeout=2"
    with pytest.raises(psycopg.OperationalError) as raised:
        connect(url)
    assert "postgresql://someone:***@127.0.0.1:1/quimbi" in str(raised.value)
    assert "s3cret-pw" not in str(raised.value)
    # The original error, which could quote the connection string, is not chained.
    assert raised.value.__cause__ is None and raised.value.__context__ is None


def test_malformed_url_error_does_not_echo_the_password() -> None:
    url = "postgresql://someone:s3cret-pw@127.0.0.1:notaport/quimbi"
    with pytest.raises(psycopg.Error) as raised:
        connect(url)
    assert "s3cret-pw" not in str(raised.value)
