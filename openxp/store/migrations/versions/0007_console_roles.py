"""console roles: every account is an owner, admin or viewer, enforced by the database

The tenant console decides every page and action by the account's role (viewer reads; admin
manages integrations, keys and learners; owner also manages admins). A role outside those
three would be an account the console cannot place, so any such value becomes ``viewer``
(the least it may do: fail closed) and a CHECK constraint keeps new rows to the three.

Revision ID: 0007
Revises: 0005 (the coordinator re-chains it after 0006_audit_log at merge)
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

CONSTRAINT = "role_known"


def upgrade() -> None:
    op.execute("UPDATE accounts SET role = 'viewer' WHERE role NOT IN ('owner', 'admin', 'viewer')")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_check_constraint(CONSTRAINT, "role IN ('owner', 'admin', 'viewer')")


def downgrade() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint(CONSTRAINT, type_="check")
