"""revocation clock: a counter the database bumps whenever a bearer token may have ended, and
each worker's reading of it

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03

Every worker caches the bearer checks it made (``openxp.auth.bearer_cache``) and empties its
cache when this counter moves. The counter is bumped by triggers, not by the code that
revokes, so no path that ends a token (a revocation, reuse detection, a disabled client,
account or tenant, a changed password, a deletion) can forget it: an UPDATE or DELETE that
could end a live token bumps it in the same transaction. Expiry needs no bump: it is checked
exactly on every cache hit.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# (table, event, SQLite's WHEN condition, PostgreSQL's; None: always). Both run per row, and only
# when a row changes in a way that may end a live token. On PostgreSQL they are deferred constraint
# triggers: they run at COMMIT, after the transaction holds every other lock it takes, so the
# clock's row lock is its last and shortest (two revoking transactions cannot deadlock on the clock
# and a grant), and the function bumps the clock once per transaction however many rows changed.
_SQLITE_NOW = "((julianday('now') - 2440587.5) * 86400.0)"
_PG_NOW = "extract(epoch from clock_timestamp())"
TRIGGERS = [
    (
        "access_tokens",
        "UPDATE OF revoked_at, expires_at",
        "NEW.revoked_at IS NOT NULL OR NEW.expires_at < OLD.expires_at",
        "NEW.revoked_at IS NOT NULL OR NEW.expires_at < OLD.expires_at",
    ),
    ("access_tokens", "DELETE", f"OLD.expires_at > {_SQLITE_NOW}", f"OLD.expires_at > {_PG_NOW}"),
    ("grants", "UPDATE OF revoked_at", "NEW.revoked_at IS NOT NULL", "NEW.revoked_at IS NOT NULL"),
    ("grants", "DELETE", None, None),
    ("clients", "UPDATE OF disabled", "NEW.disabled", "NEW.disabled"),
    ("clients", "DELETE", None, None),
    (
        "accounts",
        "UPDATE OF disabled, password_hash",
        "NEW.disabled OR NEW.password_hash IS NOT OLD.password_hash",
        "NEW.disabled OR NEW.password_hash IS DISTINCT FROM OLD.password_hash",
    ),
    ("accounts", "DELETE", None, None),
    ("tenants", "UPDATE OF disabled", "NEW.disabled", "NEW.disabled"),
    ("tenants", "DELETE", None, None),
]


def _name(table: str, event: str) -> str:
    return f"revocation_clock_{table}_{event.split()[0].lower()}"


def upgrade() -> None:
    op.create_table(
        "revocation_clock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revocation_clock")),
    )
    op.execute("INSERT INTO revocation_clock (id, generation) VALUES (1, 0)")
    # Each running worker's last reading of the clock: a worker that ended tokens waits, before it
    # answers, until every live worker has read the clock as it left it (store.revocations.settle).
    op.create_table(
        "bearer_cache_workers",
        sa.Column("worker", sa.String(length=64), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("seen_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("worker", name=op.f("pk_bearer_cache_workers")),
    )
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:
        # The transaction-local setting makes one bump per transaction, whatever the rows.
        op.execute(
            "CREATE FUNCTION openxp_revocation_tick() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF coalesce(current_setting('openxp.revocation_ticked', true), '') = 'yes' THEN RETURN NULL; END IF;"
            " PERFORM set_config('openxp.revocation_ticked', 'yes', true);"
            " UPDATE revocation_clock SET generation = generation + 1 WHERE id = 1; RETURN NULL; END $$"
        )
    for table, event, sqlite_when, pg_when in TRIGGERS:
        when = pg_when if postgres else sqlite_when
        condition = f" WHEN ({when})" if when else ""
        if postgres:
            op.execute(
                f"CREATE CONSTRAINT TRIGGER {_name(table, event)} AFTER {event} ON {table}"
                f" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW{condition} EXECUTE FUNCTION openxp_revocation_tick()"
            )
        else:
            tick = "BEGIN UPDATE revocation_clock SET generation = generation + 1 WHERE id = 1; END"
            op.execute(f"CREATE TRIGGER {_name(table, event)} AFTER {event} ON {table} FOR EACH ROW{condition} {tick}")


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for table, event, _, _ in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {_name(table, event)}" + (f" ON {table}" if postgres else ""))
    if postgres:
        op.execute("DROP FUNCTION IF EXISTS openxp_revocation_tick()")
    op.drop_table("bearer_cache_workers")
    op.drop_table("revocation_clock")
