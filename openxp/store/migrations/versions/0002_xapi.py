"""xAPI statements

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "xapi_statements",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("statement_id", sa.String(length=36), nullable=False),
        sa.Column("stored", sa.Float(), nullable=False),
        sa.Column("voided", sa.Boolean(), nullable=False),
        sa.Column("verb_id", sa.Text(), nullable=False),
        sa.Column("actor_key", sa.Text(), nullable=False),
        sa.Column("object_activity", sa.Text(), nullable=True),
        sa.Column("object_agent", sa.Text(), nullable=True),
        sa.Column("object_statement", sa.String(length=36), nullable=True),
        sa.Column("registration", sa.String(length=36), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_xapi_statements_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_xapi_statements")),
        sa.UniqueConstraint("tenant_id", "statement_id", name=op.f("uq_xapi_statements_tenant_id_statement_id")),
    )
    for cols in (
        ("tenant_id", "stored"),
        ("tenant_id", "verb_id", "seq"),
        ("tenant_id", "actor_key", "seq"),
        ("tenant_id", "object_activity", "seq"),
        ("tenant_id", "object_agent", "seq"),
        ("tenant_id", "object_statement"),
        ("tenant_id", "registration", "seq"),
    ):
        op.create_index(op.f("ix_xapi_statements_" + "_".join(cols)), "xapi_statements", list(cols))
    for table, column in (("xapi_statement_agents", "agent_key"), ("xapi_statement_activities", "activity_id")):
        op.create_table(
            table,
            sa.Column("seq", SEQ, nullable=False),
            sa.Column(column, sa.Text(), nullable=False),
            sa.Column("tenant_id", sa.Integer(), nullable=False),
            sa.ForeignKeyConstraint(
                ["seq"], ["xapi_statements.seq"], name=op.f(f"fk_{table}_seq_xapi_statements"), ondelete="CASCADE"
            ),
            sa.PrimaryKeyConstraint("seq", column, name=op.f(f"pk_{table}")),
        )
        op.create_index(op.f(f"ix_{table}_tenant_id_{column}_seq"), table, ["tenant_id", column, "seq"])
    op.create_table(
        "xapi_documents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("activity_id", sa.Text(), nullable=False),
        sa.Column("agent_key", sa.Text(), nullable=False),
        sa.Column("registration", sa.String(length=36), nullable=False),
        sa.Column("doc_id", sa.Text(), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("etag", sa.String(length=40), nullable=False),
        sa.Column("updated", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_xapi_documents_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_xapi_documents")),
        sa.UniqueConstraint(
            "tenant_id",
            "kind",
            "activity_id",
            "agent_key",
            "registration",
            "doc_id",
            name="uq_xapi_documents_key",
        ),
    )
    op.create_table(
        "xapi_attachments",
        sa.Column("tenant_id", sa.Integer(), nullable=False),
        sa.Column("sha2", sa.String(length=128), nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_xapi_attachments_tenant_id_tenants"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("tenant_id", "sha2", name=op.f("pk_xapi_attachments")),
    )


def downgrade() -> None:
    op.drop_table("xapi_attachments")
    op.drop_table("xapi_documents")
    op.drop_table("xapi_statement_activities")
    op.drop_table("xapi_statement_agents")
    op.drop_table("xapi_statements")
