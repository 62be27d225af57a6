"""What platforms announce about their rate limits, and the requests in flight against it
(social_schema_version 3).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_budgets",
        sa.Column("bucket", sa.String(255), primary_key=True),
        sa.Column("announced_limit", sa.Integer, nullable=True),
        sa.Column("remaining", sa.Integer, nullable=False),
        sa.Column("reset_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "rate_permits",
        sa.Column("permit", sa.String(32), primary_key=True),
        sa.Column("bucket", sa.String(255), primary_key=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_rate_permits_bucket", "rate_permits", ["bucket", "expires_at"])
