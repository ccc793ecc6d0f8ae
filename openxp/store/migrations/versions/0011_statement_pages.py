"""statement and learner pages that stop at the page

``ix_xapi_statements_tenant_id_seq``: the tenant's newest statements without a filter (the
console's Learning records page, GET /xapi/statements with no parameter) walk this index and
stop after one page; before it, SQLite took the (tenant_id, ...) index of another column and
sorted every statement of the tenant (0.5 s at 100,000 statements).

``ix_xapi_statements_tenant_id_stored`` becomes ``..._tenant_id_stored_voided``: a time window
finds its page's seqs in the index alone (voided is checked there too) and reads only the page's
rows; the per-day counts use the same index as before (its first two columns).

``ix_learners_tenant_id_id``: a page of learners in creation order (the console's search, GET
/api/actors) walks it and stops at the page; SQLite took the (tenant_id, identifier) index and
sorted every learner of the tenant first, and so tested every one against a search's criteria.

Revision ID: 0011
Revises: 0010 (re-chained after 0009_session_reauth and 0010_staged_imports when merged)
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(op.f("ix_xapi_statements_tenant_id_seq"), "xapi_statements", ["tenant_id", "seq"])
    op.create_index(
        op.f("ix_xapi_statements_tenant_id_stored_voided"), "xapi_statements", ["tenant_id", "stored", "voided"]
    )
    op.drop_index(op.f("ix_xapi_statements_tenant_id_stored"), table_name="xapi_statements")
    op.create_index(op.f("ix_learners_tenant_id_id"), "learners", ["tenant_id", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_learners_tenant_id_id"), table_name="learners")
    op.create_index(op.f("ix_xapi_statements_tenant_id_stored"), "xapi_statements", ["tenant_id", "stored"])
    op.drop_index(op.f("ix_xapi_statements_tenant_id_stored_voided"), table_name="xapi_statements")
    op.drop_index(op.f("ix_xapi_statements_tenant_id_seq"), table_name="xapi_statements")
