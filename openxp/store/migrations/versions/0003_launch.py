"""short-lived and content-launch credentials

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
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
        "short_lived_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=100), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.JSON(), nullable=True),
        sa.Column("actor_key", sa.Text(), nullable=True),
        sa.Column("activity_id", sa.Text(), nullable=True),
        sa.Column("registration", sa.String(length=36), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("revoked_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_short_lived_credentials_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_short_lived_credentials")),
    )
    op.create_index(op.f("ix_short_lived_credentials_username"), "short_lived_credentials", ["username"])
    op.create_index(
        op.f("ix_short_lived_credentials_tenant_id_username"), "short_lived_credentials", ["tenant_id", "username"]
    )


def downgrade() -> None:
    op.drop_table("short_lived_credentials")
