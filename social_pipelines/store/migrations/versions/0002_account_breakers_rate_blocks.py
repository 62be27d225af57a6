"""Deliveries remember the account's name, attempt outcomes fit `superseded:...`, an index
for the quota counts; circuit breakers and rate blocks (social_schema_version 2).

Stores from before Alembic that are adopted at version 1 may already hold any of the new
tables (the code of that time created every table it knew at each open) or the index:
only what is missing is created. (A new store's script is built offline, where nothing can
be looked at: there, only what 0001 made exists.)

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().as_sql:  # a new store's script: nothing is there but 0001's tables
        tables: set[str] = {"deliveries", "delivery_attempts"}
        indexes: set[str] = set()
    else:
        inspector = sa.inspect(op.get_bind())
        tables = set(inspector.get_table_names())
        indexes = {name for index in inspector.get_indexes("deliveries") if (name := index["name"])}
    # A name to reach a deferred delivery's account again without searching.
    op.add_column(
        "deliveries",
        sa.Column("account", sa.String(64), nullable=False, server_default=""),
    )
    if "ix_deliveries_account_state" not in indexes:
        op.create_index(
            "ix_deliveries_account_state", "deliveries", ["platform", "account_key", "state"]
        )
    if op.get_bind().dialect.name == "postgresql":  # SQLite does not enforce VARCHAR lengths
        op.alter_column(
            "delivery_attempts",
            "outcome",
            type_=sa.String(32),
            existing_type=sa.String(16),
            existing_nullable=True,
        )
    if "circuit_breakers" not in tables:
        op.create_table(
            "circuit_breakers",
            sa.Column("name", sa.String(255), primary_key=True),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("fail_counter", sa.Integer, nullable=False),
            sa.Column("success_counter", sa.Integer, nullable=False),
            sa.Column("opened_at", sa.DateTime(timezone=True), nullable=True),
            sa.Column("trial_owner", sa.String(64), nullable=True),
            sa.Column("trial_until", sa.DateTime(timezone=True), nullable=True),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        )
    if "breaker_events" not in tables:
        op.create_table(
            "breaker_events",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("name", sa.String(255), nullable=False),
            sa.Column("from_state", sa.String(16), nullable=True),
            sa.Column("to_state", sa.String(16), nullable=False),
            sa.Column("at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("reason", sa.String(2048), nullable=True),
        )
        op.create_index("ix_breaker_events_name", "breaker_events", ["name"])
    if "rate_blocks" not in tables:
        op.create_table(
            "rate_blocks",
            sa.Column("bucket", sa.String(255), primary_key=True),
            sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=False),
            sa.Column("reason", sa.String(255), nullable=True),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        )
