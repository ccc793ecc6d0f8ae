"""short-lived usernames unique per tenant, enforced by the database

Creating a credential was a check-then-insert, so parallel creates of one name could all
succeed. Before the unique index can exist, dead rows (expired or revoked) go, and of live
duplicates within one tenant only the newest stays (they are short-lived: at most a day).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

INDEX = "ix_short_lived_credentials_tenant_id_username"


def upgrade() -> None:
    op.execute(
        sa.text("DELETE FROM short_lived_credentials WHERE revoked_at IS NOT NULL OR expires_at <= :now").bindparams(
            now=time.time()
        )
    )
    op.execute(
        "DELETE FROM short_lived_credentials WHERE id NOT IN"
        " (SELECT MAX(id) FROM short_lived_credentials GROUP BY tenant_id, username)"
    )
    with op.batch_alter_table("short_lived_credentials", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
        batch_op.create_index(INDEX, ["tenant_id", "username"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("short_lived_credentials", schema=None) as batch_op:
        batch_op.drop_index(INDEX)
        batch_op.create_index(INDEX, ["tenant_id", "username"], unique=False)
