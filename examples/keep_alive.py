"""An integration that keeps running for years: the seed's flow once, then refresh forever.

    python examples/keep_alive.py authorize   # once: prints the URL an admin opens; paste the redirect back
    python examples/keep_alive.py call        # any time after: GET /api/actors, refreshing as needed

Settings come from the environment: OPENXP_URL (the server), CXP_TENANT, CXP_CLIENT_ID,
CXP_CLIENT_SECRET, CXP_REDIRECT_URI, and CXP_TOKEN_FILE (where the token set lives; default
./openxp-token.json).

It uses Authlib's httpx client, which refreshes the access token shortly before it expires and
hands every new token set to ``update_token``; that hook writes it to the token file at once,
under an exclusive lock (fcntl), atomically, before the new tokens are used, because the refresh
token that came in is the only one that works from now on. A 401 (the access token was revoked
or expired early) gets one forced refresh and one retry. A refresh whose answer never arrives
(a timeout, a crash) is simply retried with the same refresh token: with the server's reuse grace
on (OPENXP_REFRESH_REUSE_GRACE or the client's --refresh-reuse-grace), the retry gets the same
answer; two processes sharing the token file that refresh at once do too.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from authlib.integrations.httpx_client import OAuth2Client

RETRIES = 3


@dataclass(frozen=True)
class Config:
    base_url: str
    tenant: str
    client_id: str
    client_secret: str
    redirect_uri: str
    token_file: Path

    @classmethod
    def from_env(cls) -> Config:
        env = os.environ
        return cls(
            base_url=env["OPENXP_URL"].rstrip("/"),
            tenant=env["CXP_TENANT"],
            client_id=env["CXP_CLIENT_ID"],
            client_secret=env["CXP_CLIENT_SECRET"],
            redirect_uri=env.get("CXP_REDIRECT_URI", ""),
            token_file=Path(env.get("CXP_TOKEN_FILE", "openxp-token.json")),
        )

    @property
    def token_endpoint(self) -> str:
        return f"{self.base_url}/auth/oauth/token"


class TokenFile:
    """The token set as JSON in one file, read and written under an exclusive ``flock`` on a
    companion lock file, so that processes sharing it never see half a write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with open(self.lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def load(self) -> dict[str, Any] | None:
        with self.locked():
            if not self.path.exists():
                return None
            token: dict[str, Any] = json.loads(self.path.read_text())
            return token

    def save(self, token: dict[str, Any]) -> None:
        with self.locked():
            temporary = self.path.with_name(self.path.name + ".tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # secrets: owner only
            with os.fdopen(fd, "w") as out:
                json.dump(dict(token), out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.path)

    def update_token(
        self, token: dict[str, Any], refresh_token: str | None = None, access_token: str | None = None
    ) -> None:
        """Authlib's hook: called with every new token set, before the client uses it."""
        self.save(token)


def client(config: Config, store: TokenFile, **httpx_options: Any) -> OAuth2Client:
    return OAuth2Client(
        config.client_id,
        config.client_secret,
        token_endpoint=config.token_endpoint,
        redirect_uri=config.redirect_uri or None,
        token=store.load(),
        update_token=store.update_token,
        leeway=int(os.environ.get("CXP_REFRESH_LEEWAY", "60")),  # refresh this many seconds before expiry
        timeout=30,
        **httpx_options,
    )


def authorization_url(config: Config, session: OAuth2Client) -> str:
    url, _state = session.create_authorization_url(f"{config.base_url}/auth/oauth/authorize")
    return str(url)


def finish_authorization(config: Config, session: OAuth2Client, redirected_to: str) -> dict[str, Any]:
    """Exchange the code in the URL the admin's browser was sent to; the hook is not called for a
    first token, so it is saved here."""
    token = session.fetch_token(config.token_endpoint, authorization_response=redirected_to)
    TokenFile(config.token_file).save(token)
    return dict(token)


def refresh_now(config: Config, session: OAuth2Client, store: TokenFile) -> None:
    """Refresh at once (after a 401), retrying a lost answer with the same refresh token. Another
    process may have refreshed first: the file then holds a newer set, which is used instead."""
    current = store.load() or dict(session.token)
    if current.get("access_token") != session.token.get("access_token"):
        session.token = current
        return
    for attempt in range(RETRIES):
        try:
            session.refresh_token(config.token_endpoint, refresh_token=current["refresh_token"])
            return
        except httpx.TransportError:
            if attempt == RETRIES - 1:
                raise
            time.sleep(1 + attempt)


def call_api(
    config: Config, session: OAuth2Client, store: TokenFile, method: str, path: str, **kwargs: Any
) -> httpx.Response:
    """One /api call with X-CXP-Tenant; a lost refresh answer is retried, a 401 refreshes once."""
    headers = {"X-CXP-Tenant": config.tenant, **kwargs.pop("headers", {})}
    for attempt in range(RETRIES):
        try:
            response = session.request(method, f"{config.base_url}{path}", headers=headers, **kwargs)
            break
        except httpx.TransportError:
            # Also a refresh whose answer was lost: the token is unchanged, so the retry presents
            # the same refresh token, and the server's reuse grace answers it the same way.
            if attempt == RETRIES - 1:
                raise
            time.sleep(1 + attempt)
    if response.status_code == 401:
        refresh_now(config, session, store)
        response = session.request(method, f"{config.base_url}{path}", headers=headers, **kwargs)
    return response


def main(argv: list[str]) -> int:
    config = Config.from_env()
    store = TokenFile(config.token_file)
    with client(config, store) as session:
        if argv[1:] == ["authorize"]:
            print("Open this URL, sign in as an admin and approve:\n" + authorization_url(config, session))
            redirected_to = input("Paste the URL your browser was sent to: ").strip()
            finish_authorization(config, session, redirected_to)
            print(f"token set stored in {config.token_file}")
            return 0
        if argv[1:] == ["call"]:
            response = call_api(config, session, store, "GET", "/api/actors")
            print(json.dumps({"status": response.status_code, "body": response.json()}))
            return 0 if response.status_code == 200 else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
