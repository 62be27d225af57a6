"""Stores as releases before Alembic made them: a frozen copy of their DDL.

Written out here, not built by the code under test: the adoption tests must start from
what older releases left on disk, whatever `schema.py` and the revisions say today. The
DDL is what `metadata.create_all` emitted at schema version 3 (commit fb96944); the two
backends differ only in the timestamp and the auto-increment types.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from social_pipelines.store.engine import normalise_url

_TYPES = {
    "sqlite": {"ts": "DATETIME", "serial": "INTEGER"},
    "postgresql": {"ts": "TIMESTAMP WITH TIME ZONE", "serial": "SERIAL"},
}

V3_DDL = """
CREATE TABLE breaker_events (
    id {serial} NOT NULL,
    name VARCHAR(255) NOT NULL,
    from_state VARCHAR(16),
    to_state VARCHAR(16) NOT NULL,
    at {ts} NOT NULL,
    reason VARCHAR(2048),
    PRIMARY KEY (id)
);
CREATE INDEX ix_breaker_events_name ON breaker_events (name);
CREATE TABLE circuit_breakers (
    name VARCHAR(255) NOT NULL,
    state VARCHAR(16) NOT NULL,
    fail_counter INTEGER NOT NULL,
    success_counter INTEGER NOT NULL,
    opened_at {ts},
    trial_owner VARCHAR(64),
    trial_until {ts},
    updated_at {ts} NOT NULL,
    PRIMARY KEY (name)
);
CREATE TABLE deliveries (
    delivery_id VARCHAR(64) NOT NULL,
    platform VARCHAR(32) NOT NULL,
    account_key VARCHAR(255) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    subject VARCHAR(255) NOT NULL,
    campaign VARCHAR(128),
    account VARCHAR(64) NOT NULL,
    state VARCHAR(16) NOT NULL,
    text TEXT NOT NULL,
    content_hash VARCHAR(64) NOT NULL,
    remote_id VARCHAR(255),
    remote_url VARCHAR(1024),
    attempts INTEGER NOT NULL,
    not_before {ts},
    lease_until {ts},
    run_id VARCHAR(64),
    error_kind VARCHAR(32),
    status_code INTEGER,
    error TEXT,
    created_at {ts} NOT NULL,
    updated_at {ts} NOT NULL,
    sent_at {ts},
    PRIMARY KEY (delivery_id),
    CONSTRAINT uq_delivery_subject UNIQUE (platform, account_key, kind, subject)
);
CREATE INDEX ix_deliveries_state ON deliveries (state, not_before);
CREATE INDEX ix_deliveries_account_state ON deliveries (platform, account_key, state);
CREATE INDEX ix_deliveries_sent ON deliveries (platform, account_key, sent_at);
CREATE TABLE rate_blocks (
    bucket VARCHAR(255) NOT NULL,
    blocked_until {ts} NOT NULL,
    reason VARCHAR(255),
    updated_at {ts} NOT NULL,
    PRIMARY KEY (bucket)
);
CREATE TABLE rate_budgets (
    bucket VARCHAR(255) NOT NULL,
    announced_limit INTEGER,
    remaining INTEGER NOT NULL,
    reset_at {ts} NOT NULL,
    updated_at {ts} NOT NULL,
    PRIMARY KEY (bucket)
);
CREATE TABLE rate_permits (
    permit VARCHAR(32) NOT NULL,
    bucket VARCHAR(255) NOT NULL,
    taken_at {ts} NOT NULL,
    expires_at {ts} NOT NULL,
    PRIMARY KEY (permit, bucket)
);
CREATE INDEX ix_rate_permits_bucket ON rate_permits (bucket, expires_at);
CREATE TABLE social_schema_version (
    id {serial} NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (id)
);
CREATE TABLE delivery_attempts (
    id {serial} NOT NULL,
    delivery_id VARCHAR(64) NOT NULL,
    attempt INTEGER NOT NULL,
    run_id VARCHAR(64),
    started_at {ts} NOT NULL,
    finished_at {ts},
    outcome VARCHAR(32),
    status_code INTEGER,
    error_kind VARCHAR(32),
    error VARCHAR(2048),
    PRIMARY KEY (id),
    FOREIGN KEY(delivery_id) REFERENCES deliveries (delivery_id) ON DELETE CASCADE
);
CREATE INDEX ix_delivery_attempts_delivery_id ON delivery_attempts (delivery_id);
INSERT INTO social_schema_version (id, version) VALUES (1, 3);
"""

# What each older version lacked, undone from v3 (version 1 as the release of 8047c33 left
# it: breaker and rate-block tables already there, the account column and its index not).
_BACK_TO = {
    3: [],
    2: ["DROP TABLE rate_permits", "DROP TABLE rate_budgets"],
    1: [
        "DROP TABLE rate_permits",
        "DROP TABLE rate_budgets",
        "DROP INDEX ix_deliveries_account_state",
        "ALTER TABLE deliveries DROP COLUMN account",
    ],
}


def legacy_engine(url: str) -> sa.Engine:
    """A plain engine, none of the store's tuning: what an old release's file looks like
    to anyone."""
    return sa.create_engine(normalise_url(url), poolclass=NullPool)


def build_legacy_store(url: str, version: int = 3) -> None:
    """Create the schema an older release left at `version` (1 to 3), empty but for its
    version row."""
    engine = legacy_engine(url)
    statements = [s.strip() for s in V3_DDL.format(**_TYPES[engine.dialect.name]).split(";")]
    try:
        with engine.begin() as connection:
            for statement in [s for s in statements if s] + _BACK_TO[version]:
                connection.exec_driver_sql(statement)
            connection.exec_driver_sql(f"UPDATE social_schema_version SET version = {version}")
    finally:
        engine.dispose()
