"""statement authority for statements/read/mine

Statements stored before this revision have no authority_key, so a "mine" credential
does not see them (it sees what it writes from now on).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("xapi_statements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("authority_key", sa.Text(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_xapi_statements_tenant_id_authority_key_seq"),
            ["tenant_id", "authority_key", "seq"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("xapi_statements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_xapi_statements_tenant_id_authority_key_seq"))
        batch_op.drop_column("authority_key")
