"""staged console imports

The console's learner import keeps an uploaded CSV file between its preview and the confirm in
``staged_imports`` (the digest of a random token, the tenant, the console session's digest, an
expiry and the file's bytes), so that several hosts can share one console without local files.

Revision ID: 0010
Revises: 0009 (re-chained onto 0009_session_reauth when merged)
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "staged_imports",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_staged_imports_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staged_imports")),
    )
    op.create_index(op.f("ix_staged_imports_expires_at"), "staged_imports", ["expires_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_staged_imports_expires_at"), table_name="staged_imports")
    op.drop_table("staged_imports")
