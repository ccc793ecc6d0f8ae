"""tenant retention period and erasure pseudonym key

``tenants.retention_days``: how many days the tenant's statements (by stored time) and documents
(by updated time) are kept; housekeeping deletes older ones in batches. 0, the default for every
existing tenant, keeps everything.

``tenants.pseudonym_key``: the key of the HMAC that names an erased learner in the statements
that still mention them (store/erasure.py); NULL until the tenant's first erasure.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("retention_days", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("pseudonym_key", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("pseudonym_key")
        batch.drop_column("retention_days")
