"""The relational schema. It changes only through Alembic migrations
(``openxp/store/migrations``); a test checks the two never drift apart.

Times are UNIX seconds (float, UTC) so that expiry checks are plain number
comparisons on SQLite and PostgreSQL alike. Secrets, codes and tokens are stored
only as SHA-256 digests (hex); the column names say ``*_hash`` so nobody mistakes
them for the value.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

HASH = String(64)

tenants = Table(
    "tenants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(63), nullable=False, unique=True),
    # Attributes that identify a learner on import, in order (ClearXP: Email by default).
    Column("user_id_attributes", JSON, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    # Days statements and documents are kept (housekeeping deletes older ones); 0 keeps them forever.
    Column("retention_days", Integer, nullable=False, default=0, server_default="0"),
    # The key of the tenant's erased-learner pseudonyms (store/erasure.py), made on first erasure.
    Column("pseudonym_key", String(64), nullable=True),
)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(32), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("password_changed_at", Float, nullable=False),
    UniqueConstraint("tenant_id", "email"),
    # The console's three roles (migration 0007); anything else would be an account it cannot place.
    CheckConstraint("role IN ('owner', 'admin', 'viewer')", name="role_known"),
)

clients = Table(
    "clients",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("client_id", String(64), nullable=False, unique=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("secret_hash", HASH, nullable=True),
    Column("confidential", Boolean, nullable=False, default=True),
    Column("require_pkce", Boolean, nullable=False, default=False),
    Column("redirect_uris", JSON, nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("default_scopes", JSON, nullable=False),
    Column("grant_types", JSON, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("secret_rotated_at", Float, nullable=True),
    # Seconds a rotated refresh token may still be re-presented by this client (a retry);
    # NULL: OPENXP_REFRESH_REUSE_GRACE.
    Column("refresh_reuse_grace", Integer, nullable=True),
)

# A grant is one consent: the family every code, access token and refresh token
# descends from. Revoking it (replayed code, reused refresh token, revocation of
# a refresh token) kills the whole family in one UPDATE. A client_credentials grant
# (a service account) acts for no admin: its ``account_id`` is NULL.
grants = Table(
    "grants",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("client_pk", Integer, ForeignKey("clients.id", ondelete="CASCADE"), nullable=False),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
    Column("scope", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Column("revoked_reason", String(64), nullable=True),
    Index(None, "client_pk"),
    Index(None, "account_id"),
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", HASH, primary_key=True),
    Column("grant_id", Integer, ForeignKey("grants.id", ondelete="CASCADE"), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("code_challenge", String(128), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
    Index(None, "expires_at"),
)

access_tokens = Table(
    "access_tokens",
    metadata,
    Column("token_hash", HASH, primary_key=True),
    Column("grant_id", Integer, ForeignKey("grants.id", ondelete="CASCADE"), nullable=False),
    # May be narrower than the grant's scope (a refresh that asked for less, RFC 6749 6).
    Column("scope", Text, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Index(None, "grant_id"),
    Index(None, "expires_at"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", HASH, primary_key=True),
    Column("grant_id", Integer, ForeignKey("grants.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
    Column("revoked_at", Float, nullable=True),
    # Set when the token is rotated with a reuse grace: the random key its successors were
    # derived from (oauth/refresh_retry.py), so that a retry is answered with the same tokens.
    # Useless without the token itself, which is stored only as its digest; wiped after the grace.
    Column("rotation_nonce", String(64), nullable=True),
    Index(None, "grant_id"),
    Index(None, "expires_at"),
)

# Browser sessions of admins on the login and consent pages. ``account_id`` is
# NULL before login; logging in replaces the row (a new id, B-11). ``authenticated_at``: when the
# admin last typed the password on it (sign-in, or a console re-authentication, L-10).
sessions = Table(
    "sessions",
    metadata,
    Column("id_hash", HASH, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id", ondelete="CASCADE"), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("last_seen_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("authenticated_at", Float, nullable=True),
    Index(None, "account_id"),
    Index(None, "expires_at"),
)

# A validated authorization request waiting for login and consent. The consent
# form names it by id; everything else comes from this row, never from the form.
interactions = Table(
    "interactions",
    metadata,
    Column("id_hash", HASH, primary_key=True),
    Column("session_hash", HASH, nullable=False),
    Column("client_pk", Integer, ForeignKey("clients.id", ondelete="CASCADE"), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False),
    Column("state", Text, nullable=True),
    Column("code_challenge", String(128), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float, nullable=True),
    Index(None, "session_hash"),
    Index(None, "expires_at"),
)

throttles = Table(
    "throttles",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("window_start", Float, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("locked_until", Float, nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(64), nullable=False, unique=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("secret_hash", HASH, nullable=False),
    Column("scopes", JSON, nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=True),
)

# The tenant's learners: the users that ClearXP's import creates and updates.
learners = Table(
    "learners",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("identifier", String(320), nullable=False),
    Column("name", String(500), nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("tenant_id", "identifier"),
    # A page of the tenant's learners in creation order (console search, GET /api/actors) walks
    # this index and stops at the page; without it SQLite read and sorted every learner of the
    # tenant for each page, a search that matches many included (migration 0011).
    Index(None, "tenant_id", "id"),
)

# xAPI statements, one row each. ``seq`` is the stored order (paging cursor);
# the columns beside ``payload`` exist only to serve the query parameters, and
# every index leads with tenant_id so a query never reads another tenant's rows.
# 64-bit on PostgreSQL (a busy LRS passes 2**31 statements); SQLite's rowid is already 64-bit
# and only a plain INTEGER PRIMARY KEY is that rowid.
SEQ = BigInteger().with_variant(Integer(), "sqlite")

xapi_statements = Table(
    "xapi_statements",
    metadata,
    Column("seq", SEQ, primary_key=True, autoincrement=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("statement_id", String(36), nullable=False),
    Column("stored", Float, nullable=False),
    Column("voided", Boolean, nullable=False, default=False),
    Column("verb_id", Text, nullable=False),
    Column("actor_key", Text, nullable=False),
    Column("object_activity", Text, nullable=True),
    Column("object_agent", Text, nullable=True),
    Column("object_statement", String(36), nullable=True),
    Column("registration", String(36), nullable=True),
    Column("payload", Text, nullable=False),
    # The credential that wrote it (its authority's key), for statements/read/mine.
    Column("authority_key", Text, nullable=True),
    UniqueConstraint("tenant_id", "statement_id"),
    # The newest (or oldest) statements of a tenant without a filter: an ordered walk that stops
    # at the page (migration 0011; without it SQLite sorted the whole tenant for every page).
    Index(None, "tenant_id", "seq"),
    # Time windows and the console's statements per day. ``voided`` makes the index cover a
    # window query's seq search, so the rows are read only for the page (migration 0011).
    Index(None, "tenant_id", "stored", "voided"),
    Index(None, "tenant_id", "verb_id", "seq"),
    Index(None, "tenant_id", "actor_key", "seq"),
    Index(None, "tenant_id", "object_activity", "seq"),
    Index(None, "tenant_id", "object_agent", "seq"),
    Index(None, "tenant_id", "object_statement"),
    Index(None, "tenant_id", "registration", "seq"),
    Index(None, "tenant_id", "authority_key", "seq"),
)

# Every agent and activity a statement mentions anywhere (context, substatement,
# authority), for related_agents / related_activities.
xapi_statement_agents = Table(
    "xapi_statement_agents",
    metadata,
    Column("seq", SEQ, ForeignKey("xapi_statements.seq", ondelete="CASCADE"), primary_key=True),
    Column("agent_key", Text, primary_key=True),
    Column("tenant_id", Integer, nullable=False),
    Index(None, "tenant_id", "agent_key", "seq"),
)

xapi_statement_activities = Table(
    "xapi_statement_activities",
    metadata,
    Column("seq", SEQ, ForeignKey("xapi_statements.seq", ondelete="CASCADE"), primary_key=True),
    Column("activity_id", Text, primary_key=True),
    Column("tenant_id", Integer, nullable=False),
    Index(None, "tenant_id", "activity_id", "seq"),
)

# One row: a counter the database's triggers bump whenever a bearer token may have ended
# (migration 0016 lists them); each worker empties its bearer cache when it moves.
revocation_clock = Table(
    "revocation_clock",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("generation", BigInteger, nullable=False),
)

# Each running worker's last reading of the revocation clock (store.revocations.settle).
bearer_cache_workers = Table(
    "bearer_cache_workers",
    metadata,
    Column("worker", String(64), primary_key=True),
    Column("generation", BigInteger, nullable=False),
    Column("seen_at", Float, nullable=False),
)

# Completion records (GET /api/actors/completions): one row per learner, activity and
# registration ('' for statements without one), folded from the learner's statements as they
# are stored (``openxp.xapi.completions``). Every column merges order-independently (``or``,
# greatest, least, sum), so concurrent batches and any arrival order give the same row.
# ``success`` is 1 passed, 0 failed, NULL unknown; the greatest wins (a pass after a fail).
xapi_completions = Table(
    "xapi_completions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("actor_key", Text, nullable=False),
    Column("activity_id", Text, nullable=False),
    Column("registration", String(36), nullable=False),
    Column("actor", JSON, nullable=False),
    Column("completed", Boolean, nullable=False),
    Column("success", Integer, nullable=True),
    Column("score", Float, nullable=True),
    Column("first_at", Float, nullable=False),
    Column("last_at", Float, nullable=False),
    Column("completed_at", Float, nullable=True),
    Column("statements", Integer, nullable=False),
    UniqueConstraint("tenant_id", "actor_key", "activity_id", "registration", name="uq_xapi_completions_key"),
    Index(None, "tenant_id", "activity_id"),
)

# The activity tree as statements describe it: ``contextActivities.parent`` of a statement
# about ``child``. Not personal data: erasure leaves it.
xapi_activity_parents = Table(
    "xapi_activity_parents",
    metadata,
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("parent", Text, primary_key=True),
    Column("child", Text, primary_key=True),
    Index(None, "tenant_id", "child"),
)

# xAPI documents: State (activity + agent [+ registration] + stateId), Activity
# Profile (activity + profileId) and Agent Profile (agent + profileId). Unused
# key parts are '' so one unique constraint covers all three kinds.
xapi_documents = Table(
    "xapi_documents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("activity_id", Text, nullable=False),
    Column("agent_key", Text, nullable=False),
    Column("registration", String(36), nullable=False),
    Column("doc_id", Text, nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("content", LargeBinary, nullable=False),
    Column("etag", String(40), nullable=False),
    Column("updated", Float, nullable=False),
    # Named by hand: the generated name would pass PostgreSQL's 63-character limit.
    UniqueConstraint(
        "tenant_id", "kind", "activity_id", "agent_key", "registration", "doc_id", name="uq_xapi_documents_key"
    ),
)

# Statement attachment bodies, by content hash (several statements may share one).
xapi_attachments = Table(
    "xapi_attachments",
    metadata,
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True),
    Column("sha2", String(128), primary_key=True),
    Column("content_type", String(255), nullable=False),
    Column("content", LargeBinary, nullable=False),
)

# Short-lived Basic credentials: ClearXP's POST /api/auth/basic ("basic") and
# content-launch credentials ("launch"). Only a SHA-256 digest of the password is
# kept. A credential bound to an actor acts only as that Agent (actor_key is its
# inverse functional identifier); a launch credential also carries its activity
# and registration. Expired and revoked rows are dead; housekeeping may purge them.
short_lived_credentials = Table(
    "short_lived_credentials",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("username", String(100), nullable=False),
    Column("secret_hash", HASH, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("actor", JSON, nullable=True),
    Column("actor_key", Text, nullable=True),
    Column("activity_id", Text, nullable=True),
    Column("registration", String(36), nullable=True),
    Column("created_by", String(200), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    # cmi5 (kind "cmi5"): the digest of the one-time fetch URL's key, when it was redeemed (the
    # Basic secret exists only from then on), the session's id, and when the AU terminated it.
    Column("fetch_hash", HASH, nullable=True),
    Column("fetched_at", Float, nullable=True),
    Column("session_id", String(36), nullable=True),
    Column("terminated_at", Float, nullable=True),
    Index(None, "username"),
    Index(None, "fetch_hash", unique=True),
    # One row per name and tenant, live or dead: creating over a dead row replaces it in the
    # same statement (store.launches.create), so the database itself refuses a second live one.
    Index(None, "tenant_id", "username", unique=True),
)

# The audit log: security events, one row each, written in batches by ``openxp.audit_writer``.
# ``tenant`` is the tenant's name (NULL for an event no tenant owns, such as a failed client
# authentication for an unknown client: such rows are shown to no tenant). ``details`` is the
# event's own fields as a JSON object; callers never pass secrets (openxp.audit).
audit_events = Table(
    "audit_events",
    metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column("tenant", String(63), nullable=True),
    Column("at", Float, nullable=False),
    Column("type", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("actor", String(320), nullable=True),
    Column("ip", String(64), nullable=True),
    Column("details", Text, nullable=False),
    Index(None, "tenant", "at"),
    Index(None, "tenant", "type", "at"),
    # Retention deletes by age across tenants.
    Index(None, "at"),
)

# A CSV file uploaded to the console's learner import, kept between its preview and the confirm
# (an hour at most): the confirm form carries only the token whose digest is ``id``. In the
# database, not on disk, since several hosts may serve the same console.
staged_imports = Table(
    "staged_imports",
    metadata,
    Column("id", HASH, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("session_hash", HASH, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("content", LargeBinary, nullable=False),
    Index(None, "expires_at"),
)

# Forwarding (issue 15): per tenant, another LRS (``xapi``) or a webhook that every accepted
# statement is sent to. The URL (its path or query may carry a token), the credentials and the
# webhook's signing secret are stored sealed (openxp/forwarding/sealing.py); ``origin``
# (scheme://host:port) is the part shown by ``openxp forwarding list|status``.
forwarding_targets = Table(
    "forwarding_targets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant_id", Integer, ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("origin", String(300), nullable=False),
    Column("url_sealed", Text, nullable=False),
    Column("auth_sealed", Text, nullable=True),
    Column("secret_sealed", Text, nullable=True),
    Column("created_at", Float, nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    CheckConstraint("kind IN ('xapi', 'webhook')", name="forwarding_kind_known"),
    Index(None, "tenant_id", "enabled"),
)

# The outbox: one row per (target, statement) still to deliver, written in the transaction that
# stores the statement (store/statements.insert_many), deleted once delivered. A worker leases
# rows (``lease_owner``/``lease_until``) with one conditional UPDATE; a failed delivery counts an
# attempt and waits until ``next_attempt_at``; ``dead`` after OPENXP_FORWARDING_MAX_ATTEMPTS.
forwarding_outbox = Table(
    "forwarding_outbox",
    metadata,
    Column("id", SEQ, primary_key=True, autoincrement=True),
    Column("target_id", Integer, ForeignKey("forwarding_targets.id", ondelete="CASCADE"), nullable=False),
    Column("seq", SEQ, ForeignKey("xapi_statements.seq", ondelete="CASCADE"), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", Float, nullable=False),
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("dead", Boolean, nullable=False, default=False),
    # The due rows, oldest first (the lease); the status per target; a statement's rows (erasure).
    Index(None, "dead", "next_attempt_at"),
    Index(None, "target_id", "dead"),
    Index(None, "seq"),
)
