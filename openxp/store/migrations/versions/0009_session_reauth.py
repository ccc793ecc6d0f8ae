"""sessions remember when their admin last proved the password

The console asks for the password again before a sensitive action (rotating a secret, creating a
key, managing admins) unless the session's admin typed it within OPENXP_CONSOLE_REAUTH_SECONDS
(docs/security.md L-10). The time is kept with the session, on the server: ``authenticated_at``,
set at sign-in and at each re-authentication; NULL for a session nobody signed in to. A session
signed in before this migration signed in when its row was made, so it starts from ``created_at``.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("authenticated_at", sa.Float(), nullable=True))
    op.execute("UPDATE sessions SET authenticated_at = created_at WHERE account_id IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("authenticated_at")
