"""Operators' alerts, one per event (keyed by its identity), and their delivery to each
sink with attempts, backoff and the claim that keeps two sensor processes from sending one
alert twice; circuit transitions findable by time.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("alert_key", sa.String(512), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_alerts_created", "alerts", ["created_at"])
    op.create_table(
        "alert_deliveries",
        sa.Column(
            "alert_key",
            sa.String(512),
            sa.ForeignKey("alerts.alert_key", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("sink", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claim_owner", sa.String(64), nullable=True),
        sa.Column("claim_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error_class", sa.String(64), nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_alert_deliveries_due", "alert_deliveries", ["sink", "state", "next_attempt_at"]
    )
    op.create_index("ix_alert_deliveries_sent", "alert_deliveries", ["sink", "sent_at"])
    op.create_index("ix_breaker_events_at", "breaker_events", ["at"])
