"""forwarding: targets and the outbox

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "forwarding_targets",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("origin", sa.String(length=300), nullable=False),
        sa.Column("url_sealed", sa.Text(), nullable=False),
        sa.Column("auth_sealed", sa.Text(), nullable=True),
        sa.Column("secret_sealed", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.CheckConstraint("kind IN ('xapi', 'webhook')", name="forwarding_kind_known"),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_forwarding_targets_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forwarding_targets")),
    )
    op.create_index(op.f("ix_forwarding_targets_tenant_id_enabled"), "forwarding_targets", ["tenant_id", "enabled"])
    op.create_table(
        "forwarding_outbox",
        sa.Column("id", SEQ, autoincrement=True, nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("seq", SEQ, nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("dead", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["forwarding_targets.id"],
            name=op.f("fk_forwarding_outbox_target_id_forwarding_targets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["seq"], ["xapi_statements.seq"], name=op.f("fk_forwarding_outbox_seq_xapi_statements"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_forwarding_outbox")),
    )
    op.create_index(op.f("ix_forwarding_outbox_dead_next_attempt_at"), "forwarding_outbox", ["dead", "next_attempt_at"])
    op.create_index(op.f("ix_forwarding_outbox_target_id_dead"), "forwarding_outbox", ["target_id", "dead"])
    op.create_index(op.f("ix_forwarding_outbox_seq"), "forwarding_outbox", ["seq"])


def downgrade() -> None:
    op.drop_table("forwarding_outbox")
    op.drop_table("forwarding_targets")
