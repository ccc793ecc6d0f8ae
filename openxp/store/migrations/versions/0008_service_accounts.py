"""service accounts and retry-safe refresh

A client_credentials grant acts for no admin, so ``grants.account_id`` may be NULL. A client may
set its own refresh reuse grace (``clients.refresh_reuse_grace``, NULL: the server's default).
A rotated refresh token keeps, for the grace only, the per-rotation nonce its successors were
derived from (``refresh_tokens.rotation_nonce``), so that a retry gets the same answer.

Revision ID: 0008
Revises: 0005 (re-chained onto 0007 when merged beside 0006 and 0007)
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.alter_column("account_id", existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refresh_reuse_grace", sa.Integer(), nullable=True))
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rotation_nonce", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_column("rotation_nonce")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("refresh_reuse_grace")
    # Service grants have no account to keep; they go before the column may be NOT NULL again.
    op.execute("DELETE FROM grants WHERE account_id IS NULL")
    with op.batch_alter_table("grants", schema=None) as batch_op:
        batch_op.alter_column("account_id", existing_type=sa.Integer(), nullable=False)
