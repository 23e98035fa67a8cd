"""Connection-string redaction and conversion."""

import pytest

from quimbi_pipeline.db.urls import redact, scrub, sqlalchemy_psycopg2_url, with_database


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://user:s3cret@db.example:5432/quimbi", "postgresql://user:***@db.example:5432/quimbi"),
        ("postgres://user:s3cret@host/db?sslmode=require", "postgres://user:***@host/db?sslmode=require"),
        # Unencoded "@" and "/" in the password are still masked whole.
        ("postgresql://user:p@ss/w0rd@host/db", "postgresql://user:***@host/db"),
        ("postgresql://user:p%40ss@host/db", "postgresql://user:***@host/db"),
        ("postgresql://user@host/db?password=s3cret&sslmode=require", "postgresql://user@host/db?password=***&sslmode=require"),
        ("postgresql://user@host/db?sslpassword=s3cret", "postgresql://user@host/db?sslpassword=***"),
        ("host=db user=u password=s3cret dbname=q", "host=db user=u password=*** dbname=q"),
        ("host=db password='s3 cret' dbname=q", "host=db password=*** dbname=q"),
        ("postgresql://postgres@/quimbi?host=/tmp/pg", "postgresql://postgres@/quimbi?host=/tmp/pg"),
        ("postgresql://postgres:@/quimbi?host=/tmp/pg", "postgresql://postgres@/quimbi?host=/tmp/pg"),
        ("postgresql+psycopg2://u:s3cret@h/d", "postgresql+psycopg2://u:***@h/d"),
    ],
)
def test_redact_masks_every_password(url: str, expected: str) -> None:
    redacted = redact(url)
    assert redacted == expected
    assert "s3cret" not in redacted and "s3 cret" not in redacted and "p@ss" not in redacted


def test_scrub_masks_raw_and_decoded_password_in_messages() -> None:
    url = "postgresql://user:p%40ss@host/db"
    message = 'FATAL: bad password "p@ss" (raw p%40ss)'
    assert scrub(message, url) == 'FATAL: bad password "***" (raw ***)'


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@h:5432/d?sslmode=require",
        "postgres://u:p@h:5432/d?sslmode=require",
        "postgresql+psycopg://u:p@h:5432/d?sslmode=require",
        "postgresql+psycopg2://u:p@h:5432/d?sslmode=require",
    ],
)
def test_sqlalchemy_psycopg2_url_switches_only_the_scheme(url: str) -> None:
    assert sqlalchemy_psycopg2_url(url) == "postgresql+psycopg2://u:p@h:5432/d?sslmode=require"


def test_sqlalchemy_psycopg2_url_rejects_other_urls_without_showing_the_password() -> None:
    with pytest.raises(ValueError, match=r"mysql://u:\*\*\*@h/d") as raised:
        sqlalchemy_psycopg2_url("mysql://u:s3cret@h/d")
    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://postgres@/quimbi?host=/tmp/pg", "postgresql://postgres@/test_1?host=/tmp/pg"),
        ("postgresql://u:p@h:5432/postgres", "postgresql://u:p@h:5432/test_1"),
        ("postgresql://h", "postgresql://h/test_1"),
    ],
)
def test_with_database_replaces_only_the_database(url: str, expected: str) -> None:
    assert with_database(url, "test_1") == expected


def test_with_database_keeps_keyword_form() -> None:
    assert "dbname=test_1" in with_database("host=h dbname=postgres", "test_1")
