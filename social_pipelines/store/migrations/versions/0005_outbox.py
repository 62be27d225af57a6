"""The outbox: posts with their revisions; deliveries findable by subject, and an attempt
base so a delivery made due again by hand gets its attempts anew; one delivery per remote
post.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "posts",
        sa.Column("post_id", sa.String(100), primary_key=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("latest_revision", sa.Integer, nullable=False),
        sa.Column("latest_hash", sa.String(64), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text, nullable=True),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("refused", sa.Text, nullable=False),
        sa.Column("next_check_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_posts_due", "posts", ["status", "next_check_at"])
    op.create_index("ix_posts_origin", "posts", ["origin", "status"])
    op.create_table(
        "post_revisions",
        sa.Column(
            "post_id",
            sa.String(100),
            sa.ForeignKey("posts.post_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("revision", sa.Integer, primary_key=True),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("note", sa.String(1024), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column(
        "deliveries",
        sa.Column("attempt_base", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_index(
        "uq_deliveries_remote",
        "deliveries",
        ["platform", "account_key", "remote_id"],
        unique=True,
    )
    op.create_index("ix_deliveries_kind_subject", "deliveries", ["kind", "subject"])
