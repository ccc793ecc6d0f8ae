"""cmi5 sessions: the one-time fetch URL and the session of a launch credential

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("short_lived_credentials", sa.Column("fetch_hash", sa.String(length=64), nullable=True))
    op.add_column("short_lived_credentials", sa.Column("fetched_at", sa.Float(), nullable=True))
    op.add_column("short_lived_credentials", sa.Column("session_id", sa.String(length=36), nullable=True))
    op.add_column("short_lived_credentials", sa.Column("terminated_at", sa.Float(), nullable=True))
    op.create_index(
        op.f("ix_short_lived_credentials_fetch_hash"), "short_lived_credentials", ["fetch_hash"], unique=True
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_short_lived_credentials_fetch_hash"), table_name="short_lived_credentials")
    with op.batch_alter_table("short_lived_credentials") as batch:
        for column in ("terminated_at", "session_id", "fetched_at", "fetch_hash"):
            batch.drop_column(column)
