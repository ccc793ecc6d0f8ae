"""Settings, read once from the environment (and an optional ``.env`` file).

Every variable is documented in ``docs/operating.md``; the names are fixed by the
outside contract. Components receive a ``Settings`` value; nothing reads the
environment after start-up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

DEFAULT_PORT = 8000
LOG_LEVELS = ("debug", "info", "warning", "error")
# The longest refresh reuse grace: a retry comes within seconds, and housekeeping wipes a rotated
# token's retry nonce an hour after the rotation (store/housekeeping.py GRACE), never sooner.
MAX_REFRESH_REUSE_GRACE = 3600


class ConfigError(ValueError):
    """A configuration value is missing or malformed."""


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


@dataclass(frozen=True)
class Settings:
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
    session_idle_ttl: int = 30 * 60
    session_absolute_ttl: int = 12 * 3600
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

        limits = RateLimits(
            window=_int(env, "OPENXP_RATE_WINDOW", RateLimits.window),
            login_per_account=_int(env, "OPENXP_RATE_LOGIN_PER_ACCOUNT", RateLimits.login_per_account),
            login_per_ip=_int(env, "OPENXP_RATE_LOGIN_PER_IP", RateLimits.login_per_ip),
            client_auth_per_client=_int(env, "OPENXP_RATE_CLIENT_AUTH", RateLimits.client_auth_per_client),
            grant_failures_per_client=_int(env, "OPENXP_RATE_GRANT_FAILURES", RateLimits.grant_failures_per_client),
            basic_auth_per_key=_int(env, "OPENXP_RATE_BASIC_PER_KEY", RateLimits.basic_auth_per_key),
            basic_auth_per_ip=_int(env, "OPENXP_RATE_BASIC_PER_IP", RateLimits.basic_auth_per_ip),
            lockout=_int(env, "OPENXP_RATE_LOCKOUT", RateLimits.lockout),
        )
        xapi_default = env.get("OPENXP_XAPI_DEFAULT_VERSION") or "1.0.3"
        if xapi_default not in {"1.0.3", "2.0.0"}:
            raise ConfigError("OPENXP_XAPI_DEFAULT_VERSION must be 1.0.3 or 2.0.0")
        log_level = (env.get("OPENXP_LOG_LEVEL") or "").strip().lower() or None
        if log_level is not None and log_level not in LOG_LEVELS:
            raise ConfigError(f"OPENXP_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
        reuse_grace = _int(env, "OPENXP_REFRESH_REUSE_GRACE", 0, minimum=0)
        if reuse_grace > MAX_REFRESH_REUSE_GRACE:
            raise ConfigError(f"OPENXP_REFRESH_REUSE_GRACE must be at most {MAX_REFRESH_REUSE_GRACE} seconds")
        proxies = frozenset(p.strip() for p in (env.get("OPENXP_TRUSTED_PROXIES") or "").split(",") if p.strip())
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            public_url=public_url,
            code_ttl=_int(env, "OPENXP_CODE_TTL", 600),
            access_token_ttl=_int(env, "OPENXP_ACCESS_TOKEN_TTL", 3600),
            refresh_token_ttl=_int(env, "OPENXP_REFRESH_TOKEN_TTL", 30 * 24 * 3600),
            refresh_absolute_ttl=_int(env, "OPENXP_REFRESH_ABSOLUTE_TTL", 365 * 24 * 3600),
            refresh_reuse_grace=reuse_grace,
            launch_token_ttl=_int(env, "OPENXP_LAUNCH_TOKEN_TTL", 4 * 3600),
            session_idle_ttl=_int(env, "OPENXP_SESSION_IDLE_TTL", 30 * 60),
            session_absolute_ttl=_int(env, "OPENXP_SESSION_ABSOLUTE_TTL", 12 * 3600),
            tenant_domain=(env.get("OPENXP_TENANT_DOMAIN") or "").strip().lower() or None,
            trusted_proxies=proxies,
            access_log=_bool(env, "OPENXP_ACCESS_LOG", True),
            log_level=log_level,
            xapi_default_version=xapi_default,
            xapi_max_statements=_int(env, "OPENXP_XAPI_MAX_STATEMENTS", 10_000),
            xapi_max_parts=_int(env, "OPENXP_XAPI_MAX_PARTS", 1_000),
            rate_limits=limits,
            argon2_concurrency=_int(env, "OPENXP_ARGON2_CONCURRENCY", 4),
        )
