"""Settings, read once from the environment (and an optional ``.env`` file).

Every variable is documented in ``docs/operating.md``; the names are fixed by the
outside contract. Components receive a ``Settings`` value; nothing reads the
environment after start-up.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from openxp.errors import OpenXPError

DEFAULT_PORT = 8000
LOG_LEVELS = ("debug", "info", "warning", "error")
# The longest refresh reuse grace: a retry comes within seconds, and housekeeping wipes a rotated
# token's retry nonce an hour after the rotation (store/housekeeping.py GRACE), never sooner.
MAX_REFRESH_REUSE_GRACE = 3600


class ConfigError(OpenXPError, ValueError):
    """A configuration value is missing or malformed (raised at start-up, never over HTTP)."""

    code = "invalid_configuration"


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number of seconds, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _ints(env: Mapping[str, str], variables: Mapping[str, str], defaults: object) -> dict[str, Any]:
    """Each field named in ``variables`` read from its variable, defaulting to the dataclass's
    own default (``defaults`` is the class): so each default is written once, in the class."""
    return {name: _int(env, variable, getattr(defaults, name)) for name, variable in variables.items()}


def _networks(raw: str) -> tuple[str, ...]:
    """OPENXP_FORWARDING_ALLOW_NETWORKS: comma-separated CIDR blocks (10.0.0.0/8, ::1/128)."""
    found = []
    for item in (p.strip() for p in raw.split(",")):
        if not item:
            continue
        try:
            found.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(
                f"OPENXP_FORWARDING_ALLOW_NETWORKS: {item!r} is not a CIDR block such as 10.0.0.0/8"
            ) from None
    return tuple(found)


@dataclass(frozen=True)
class RateLimits:
    """Failure budgets per window; exceeding one answers 429 with Retry-After."""

    window: int = 60
    login_per_account: int = 10
    login_per_ip: int = 50
    client_auth_per_client: int = 20
    grant_failures_per_client: int = 50
    basic_auth_per_key: int = 20
    basic_auth_per_ip: int = 100
    lockout: int = 300


# The variable each of RateLimits' budgets is read from.
_RATE_VARIABLES = {
    "window": "OPENXP_RATE_WINDOW",
    "login_per_account": "OPENXP_RATE_LOGIN_PER_ACCOUNT",
    "login_per_ip": "OPENXP_RATE_LOGIN_PER_IP",
    "client_auth_per_client": "OPENXP_RATE_CLIENT_AUTH",
    "grant_failures_per_client": "OPENXP_RATE_GRANT_FAILURES",
    "basic_auth_per_key": "OPENXP_RATE_BASIC_PER_KEY",
    "basic_auth_per_ip": "OPENXP_RATE_BASIC_PER_IP",
    "lockout": "OPENXP_RATE_LOCKOUT",
}
# The variable each whole-number Setting is read from (its default: the field's own).
_WHOLE_NUMBER_VARIABLES = {
    "code_ttl": "OPENXP_CODE_TTL",
    "access_token_ttl": "OPENXP_ACCESS_TOKEN_TTL",
    "refresh_token_ttl": "OPENXP_REFRESH_TOKEN_TTL",
    "refresh_absolute_ttl": "OPENXP_REFRESH_ABSOLUTE_TTL",
    "launch_token_ttl": "OPENXP_LAUNCH_TOKEN_TTL",
    "cmi5_terminate_grace": "OPENXP_CMI5_TERMINATE_GRACE",
    "session_idle_ttl": "OPENXP_SESSION_IDLE_TTL",
    "session_absolute_ttl": "OPENXP_SESSION_ABSOLUTE_TTL",
    "xapi_max_statements": "OPENXP_XAPI_MAX_STATEMENTS",
    "xapi_max_parts": "OPENXP_XAPI_MAX_PARTS",
    "argon2_concurrency": "OPENXP_ARGON2_CONCURRENCY",
    "console_import_max_bytes": "OPENXP_CONSOLE_IMPORT_MAX_BYTES",
    "retention_batch": "OPENXP_RETENTION_BATCH",
    "forwarding_max_attempts": "OPENXP_FORWARDING_MAX_ATTEMPTS",
    "forwarding_timeout": "OPENXP_FORWARDING_TIMEOUT",
    "forwarding_batch": "OPENXP_FORWARDING_BATCH",
    "forwarding_backoff": "OPENXP_FORWARDING_BACKOFF",
}


@dataclass(frozen=True)
class Settings:
    # Each default is written here once; ``from_env`` reads it from the class (``_ints``).
    data_dir: Path
    database_url: str
    public_url: str
    code_ttl: int = 600
    access_token_ttl: int = 3600
    refresh_token_ttl: int = 30 * 24 * 3600
    refresh_absolute_ttl: int = 365 * 24 * 3600
    # Seconds within which the same client may re-present a refresh token it just rotated and get
    # the same answer again (a lost response, two workers at once); 0 is strict (docs/decisions.md).
    refresh_reuse_grace: int = 0
    launch_token_ttl: int = 4 * 3600
    # Each worker caches its bearer checks; a revocation reaches every worker within a second
    # (openxp.auth.bearer_cache). Off: every request looks its token up.
    bearer_cache: bool = True
    # cmi5 9.3.8: after an AU's "terminated" statement the LMS waits "a specified period of time"
    # before it rejects the session's statements: in-flight requests of the AU still land.
    cmi5_terminate_grace: int = 10
    session_idle_ttl: int = 30 * 60
    session_absolute_ttl: int = 12 * 3600
    # Seconds after the admin last typed the password (sign-in or re-authentication) during which
    # the console's sensitive actions ask for it no more (L-10); 0 asks every time.
    console_reauth_window: int = 300
    interaction_ttl: int = 600
    tenant_domain: str | None = None
    trusted_proxies: frozenset[str] = frozenset()
    access_log: bool = True
    # The operator commands' log level (stderr); None: warnings only. ``serve`` logs at info regardless.
    log_level: str | None = None
    # The version echoed on a request that names none (xAPI requires one; the 400 still carries it).
    xapi_default_version: str = "1.0.3"
    # Input limits on /xapi (docs/security.md): statements per request, attachment parts per request.
    xapi_max_statements: int = 10_000
    xapi_max_parts: int = 1_000
    rate_limits: RateLimits = field(default_factory=RateLimits)
    # argon2 verifications (64 MiB each) one worker process runs at once; others wait their turn.
    argon2_concurrency: int = 4
    # How long the audit log keeps an event (housekeeping purges older ones); 0 keeps them forever.
    audit_retention_days: int = 365
    # The largest CSV file the console's learner import takes in one upload (bytes).
    console_import_max_bytes: int = 20 * 1024 * 1024
    # Rows deleted per transaction when housekeeping applies the tenants' retention periods.
    retention_batch: int = 1000
    # Forwarding (openxp/forwarding/): the key that seals targets' URLs and credentials (else the
    # file data_dir/forwarding.key), the networks a target may be in although not public, the
    # attempts before a row is dead, seconds per delivery request, statements per batch, and the
    # first retry's delay (seconds; doubled each time).
    forwarding_key: str | None = field(default=None, repr=False)
    forwarding_allow_networks: tuple[str, ...] = ()
    forwarding_max_attempts: int = 20
    forwarding_timeout: int = 10
    forwarding_batch: int = 100
    forwarding_backoff: int = 1

    @property
    def issuer(self) -> str:
        return self.public_url

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, env_file: str | None = ".env", *, port: int | None = None
    ) -> Settings:
        """``port``: the port ``serve``/``quickstart`` listens on; without OPENXP_PUBLIC_URL the public
        URL is then http://127.0.0.1:PORT, so that the issuer and printed URLs name the real address."""
        env: dict[str, str] = {}
        if env_file:
            env.update(_read_env_file(Path(env_file)))
        env.update(os.environ if environ is None else environ)

        data_dir = Path(env.get("OPENXP_DATA_DIR") or "./var").resolve()
        database_url = env.get("OPENXP_DATABASE_URL") or f"sqlite:///{data_dir / 'openxp.sqlite3'}"
        if not database_url.startswith(("sqlite:", "sqlite+", "postgresql:", "postgresql+", "postgres:")):
            raise ConfigError("OPENXP_DATABASE_URL must be a sqlite:/// or postgresql:// URL")

        public_url = (env.get("OPENXP_PUBLIC_URL") or f"http://127.0.0.1:{port or DEFAULT_PORT}").rstrip("/")
        parts = urlsplit(public_url)
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query or parts.fragment:
            raise ConfigError("OPENXP_PUBLIC_URL must be an absolute http(s) URL without query or fragment")

        limits = RateLimits(**_ints(env, _RATE_VARIABLES, RateLimits))
        xapi_default = env.get("OPENXP_XAPI_DEFAULT_VERSION") or cls.xapi_default_version
        if xapi_default not in {"1.0.3", "2.0.0"}:
            raise ConfigError("OPENXP_XAPI_DEFAULT_VERSION must be 1.0.3 or 2.0.0")
        log_level = (env.get("OPENXP_LOG_LEVEL") or "").strip().lower() or None
        if log_level is not None and log_level not in LOG_LEVELS:
            raise ConfigError(f"OPENXP_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        reuse_grace = _int(env, "OPENXP_REFRESH_REUSE_GRACE", cls.refresh_reuse_grace, minimum=0)
        if reuse_grace > MAX_REFRESH_REUSE_GRACE:
            raise ConfigError(f"OPENXP_REFRESH_REUSE_GRACE must be at most {MAX_REFRESH_REUSE_GRACE} seconds")
        proxies = frozenset(p.strip() for p in (env.get("OPENXP_TRUSTED_PROXIES") or "").split(",") if p.strip())
        return cls(
            forwarding_key=(env.get("OPENXP_FORWARDING_KEY") or "").strip() or None,
            forwarding_allow_networks=_networks(env.get("OPENXP_FORWARDING_ALLOW_NETWORKS") or ""),
            data_dir=data_dir,
            database_url=database_url,
            public_url=public_url,
            refresh_reuse_grace=reuse_grace,
            tenant_domain=(env.get("OPENXP_TENANT_DOMAIN") or "").strip().lower() or None,
            trusted_proxies=proxies,
            access_log=_bool(env, "OPENXP_ACCESS_LOG", cls.access_log),
            bearer_cache=_bool(env, "OPENXP_BEARER_CACHE", cls.bearer_cache),
            log_level=log_level,
            xapi_default_version=xapi_default,
            rate_limits=limits,
            **_ints(env, _WHOLE_NUMBER_VARIABLES, cls),
            # These two may be 0: 0 keeps every audit event; 0 asks for the password before every
            # sensitive console action.
            audit_retention_days=_int(env, "OPENXP_AUDIT_RETENTION_DAYS", cls.audit_retention_days, minimum=0),
            console_reauth_window=_int(env, "OPENXP_CONSOLE_REAUTH_SECONDS", cls.console_reauth_window, minimum=0),
        )
