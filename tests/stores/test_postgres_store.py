"""What PostgresStore does that the contract suite cannot see: tables from earlier builds."""

from __future__ import annotations

import time

import psycopg
import pytest

from codat_webhooks.stores import Entry, PostgresStore, State
from codat_webhooks.stores.marks import Mark

OLD_TABLE = """
CREATE TABLE before_queues (
    key TEXT PRIMARY KEY, state TEXT NOT NULL, fingerprint TEXT NOT NULL,
    attempts INTEGER NOT NULL, first_seen DOUBLE PRECISION NOT NULL,
    last_seen DOUBLE PRECISION NOT NULL, kind TEXT, company_id TEXT, body BYTEA NOT NULL,
    headers TEXT NOT NULL, last_error TEXT, token BIGINT NOT NULL,
    lease_expires DOUBLE PRECISION NOT NULL
)
"""


@pytest.mark.postgres
def test_a_table_from_before_queued_dispatch_gains_the_credential_column(
    postgres_dsn: str,
) -> None:
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(OLD_TABLE)
        conn.execute(
            "INSERT INTO before_queues VALUES ('done-key', 'done', %s, 1, 1.0, %s, NULL, NULL,"
            " '\\x7b7d', '[]', NULL, 1, 0)",
            ("f" * 64, time.time()),
        )
    store = PostgresStore(postgres_dsn, table="before_queues")
    try:
        kept = store.get("done-key")
        assert kept is not None
        assert (kept.state, kept.body, kept.verified_by) == (State.DONE, b"{}", None)
        store.enqueue(Entry("new", "f" * 64, verified_by="signing-secret-1"))
        new = store.get("new")
        assert new is not None
        assert new.verified_by == "signing-secret-1"
    finally:
        store.close()


@pytest.mark.postgres
def test_a_table_with_the_old_marks_index_loses_it_and_keeps_its_marks(postgres_dsn: str) -> None:
    """Earlier versions indexed the marks' last_seen, which every mark move rewrote."""
    scope = "connection:company-a:connection-1"
    store = PostgresStore(postgres_dsn, table="old_marks")
    try:
        store.claim(Entry("old", "a" * 64, body=b"{}", mark=Mark(scope, 200.0)), lease=60)
    finally:
        store.close()
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute('CREATE INDEX "old_marks_marks_last_seen" ON "old_marks_marks" (last_seen)')
    reopened = PostgresStore(postgres_dsn, table="old_marks")
    try:
        claim = reopened.claim(
            Entry("late", "b" * 64, body=b"{}", mark=Mark(scope, 100.0)), lease=60
        )
    finally:
        reopened.close()
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        found = conn.execute("SELECT to_regclass('old_marks_marks_last_seen')").fetchone()
    assert found == (None,)
    assert claim.order is not None
    assert (claim.order.stale, claim.order.newer_key) == (True, "old")
