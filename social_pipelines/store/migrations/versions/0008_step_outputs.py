"""Step outputs in the state store: what each step of a Dagster run handed the next, so a
run re-executed on any machine reaching the store reads them instead of repeating the steps.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "step_outputs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("step_key", sa.String(255), primary_key=True),
        sa.Column("output_name", sa.String(255), primary_key=True),
        sa.Column("mapping_key", sa.String(255), primary_key=True),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_step_outputs_created", "step_outputs", ["created_at"])
