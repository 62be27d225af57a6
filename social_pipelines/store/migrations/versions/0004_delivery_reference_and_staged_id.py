"""Deliveries carry what they deliver (`reference`, an outbox target) and what an attempt
already made on the platform (`staged_id`: an uploaded media id, a record key, a container
id), for the publishing pipeline.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("deliveries", sa.Column("reference", sa.String(200), nullable=True))
    op.add_column("deliveries", sa.Column("staged_id", sa.String(200), nullable=True))
