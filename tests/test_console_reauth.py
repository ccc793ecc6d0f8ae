"""Re-authentication before the console's sensitive actions, over plain HTTP (issue 12).

Security cases: L-10 (rotating a client secret, creating or rotating an API key, creating a
confidential integration, managing admins and changing one's own password need the password
typed within the re-auth window; sign-in counts), Q-02 (a rotation needs that re-authentication
as well as the CSRF token and our Origin), N-01 (a wrong password on the re-auth prompt or the
change-password form counts toward the same lockout as sign-in).

The server's window is OPENXP_CONSOLE_REAUTH_SECONDS=60. "After the window" is made by moving the
session's stored authentication time back past it in the database (what 61 seconds of waiting would
do), so no test sleeps; with the default window of 300 seconds that would still be inside it, so
the tests also show the variable is read.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest

from openxp.config import ConfigError, Settings
from tests.support import flow
from tests.support.console import add_admin, csrf_of, sign_in
from tests.support.provision import dedicated_admin, dedicated_client
from tests.support.records import audit_events, wait_for_audit
from tests.support.server import PASSWORD, Server, destroy_server, make_server
from tests.xapi.lrs import xapi

WINDOW = 60
ENV = {
    "OPENXP_CONSOLE_REAUTH_SECONDS": str(WINDOW),
    "OPENXP_RATE_LOGIN_PER_ACCOUNT": "3",
    "OPENXP_RATE_LOCKOUT": "300",
}
FIELD = "reauth_password"
WRONG = "not my password at all"
SECRET_FIELD = re.compile(r'id="(?:client|key)-secret" type="text" readonly value="([^"]+)"')


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    srv = make_server(extra_env=ENV)
    add_admin(srv, "owner", "reauth-owner@example.com", "owner")
    try:
        yield srv
    finally:
        destroy_server(srv)


class _Form(HTMLParser):
    """The hidden inputs of a page's forms, values unescaped as a browser would post them."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "input" and found.get("type") == "hidden" and found.get("name"):
            self.hidden[str(found["name"])] = found.get("value") or ""


def hidden_of(html: str) -> dict[str, str]:
    parser = _Form()
    parser.feed(html)
    return parser.hidden


def session_hash(http: httpx.Client) -> str:
    (token,) = dict(http.cookies).values()
    return hashlib.sha256(token.encode()).hexdigest()


def outside_the_window(server: Server, http: httpx.Client) -> None:
    """This browser's admin last typed the password longer ago than the window."""
    server.sql(
        "UPDATE sessions SET authenticated_at = authenticated_at - :by WHERE id_hash = :h",
        {"by": WINDOW + 1, "h": session_hash(http)},
    )


def authenticated_at(server: Server, http: httpx.Client) -> float:
    return float(
        server.sql("SELECT authenticated_at FROM sessions WHERE id_hash = :h", {"h": session_hash(http)})[0][0]
    )


def secret_on(page: httpx.Response) -> str:
    found = SECRET_FIELD.search(page.text)
    assert found, page.text[:3000]
    return found.group(1)


def assert_prompt(page: httpx.Response, status: int, error: str | None = None) -> None:
    """The password prompt: nothing was done, the field has its label, an error sits next to it."""
    assert page.status_code == status, page.text[:3000]
    assert "<h1>Confirm your password</h1>" in page.text
    assert f'<label for="{FIELD}">Your password</label>' in page.text
    assert f'name="{FIELD}" type="password" autocomplete="current-password"' in page.text
    if error is None:
        assert f'id="{FIELD}-error"' not in page.text
    else:
        assert f'<p class="error" id="{FIELD}-error">{error}</p>' in page.text
        assert f'aria-describedby="{FIELD}-error"' in page.text


def token_probe(server: Server, client: dict[str, Any], secret: str) -> int:
    """The token endpoint's answer to the client with ``secret`` and a made-up refresh token: 400
    invalid_grant once the secret authenticates the client, 401 invalid_client when it does not."""
    body = {
        "grant_type": "refresh_token",
        "refresh_token": "cxr_made_up",
        "client_id": client["client_id"],
        "client_secret": secret,
    }
    return flow.token_post(server, json=body).status_code


def test_L10_the_window_defaults_to_five_minutes_and_may_be_zero() -> None:
    base = {"OPENXP_DATA_DIR": "/tmp/unused"}
    assert Settings.from_env(base, env_file=None).console_reauth_window == 300
    assert Settings.from_env({**base, "OPENXP_CONSOLE_REAUTH_SECONDS": "0"}, env_file=None).console_reauth_window == 0
    with pytest.raises(ConfigError):
        Settings.from_env({**base, "OPENXP_CONSOLE_REAUTH_SECONDS": "-1"}, env_file=None)


def test_L10_Q02_rotating_a_client_secret_needs_the_password_after_the_window(server: Server) -> None:
    """Q-02, L-10: right after sign-in the rotation needs no password. After the window it is refused
    without one and with a wrong one (each leaves the secret working at the token endpoint, and the
    wrong one is audited), and done with the right one, which opens the window again."""
    label = dedicated_client(server, "reauth-rotate")
    client = server.clients[label]
    path = f"/console/a/integrations/{client['client_id']}/rotate"
    http, csrf = sign_in(server, "a", "adminA")
    try:
        first = http.post(path, data={"csrf_token": csrf})
        assert first.status_code == 200 and "The secret was rotated" in first.text
        client["client_secret"] = secret_on(first)

        outside_the_window(server, http)
        refused = http.post(path, data={"csrf_token": csrf})
        assert_prompt(refused, 403)
        assert "To rotate the client secret of reauth-rotate, enter your password again." in refused.text
        assert hidden_of(refused.text) == {"csrf_token": csrf}
        assert flow.tokens(server, label)["access_token"]  # the secret is unchanged: it still gets tokens

        wrong = http.post(path, data={"csrf_token": csrf, FIELD: WRONG})
        assert_prompt(wrong, 400, "That is not your current password.")
        empty = http.post(path, data={"csrf_token": csrf, FIELD: ""})
        assert_prompt(empty, 400, "Enter your current password.")
        assert token_probe(server, client, client["client_secret"]) == 400
        failed = wait_for_audit(server, "reauth_failed", lambda e: e.get("action") == "client_secret_rotate")
        assert failed["actor"] == "admina@example.com" and failed["severity"] == "warning"

        before = authenticated_at(server, http)
        done = http.post(path, data={"csrf_token": csrf, FIELD: PASSWORD})
        assert done.status_code == 200 and "The secret was rotated" in done.text
        old, client["client_secret"] = client["client_secret"], secret_on(done)
        assert token_probe(server, client, old) == 401
        assert token_probe(server, client, client["client_secret"]) == 400
        assert authenticated_at(server, http) > before
        wait_for_audit(server, "reauth_succeeded", lambda e: e.get("action") == "client_secret_rotate")

        # The window is open again: the next rotation asks nothing.
        again = http.post(path, data={"csrf_token": csrf})
        assert again.status_code == 200 and "The secret was rotated" in again.text
        client["client_secret"] = secret_on(again)
        assert flow.tokens(server, label)["access_token"]
    finally:
        http.close()
    log = server.log()
    assert PASSWORD not in log and WRONG not in log


def test_Q02_the_prompt_still_needs_the_csrf_token_and_our_origin(server: Server) -> None:
    """Q-02: the right password does not stand in for the CSRF token or the Origin check."""
    label = dedicated_client(server, "reauth-csrf")
    client = server.clients[label]
    path = f"/console/a/integrations/{client['client_id']}/rotate"
    http, csrf = sign_in(server, "a", "adminA")
    try:
        outside_the_window(server, http)
        assert http.post(path, data={FIELD: PASSWORD}).status_code == 403
        hostile = http.post(path, data={"csrf_token": csrf, FIELD: PASSWORD}, headers={"origin": "https://evil.test"})
        assert hostile.status_code == 403 and "Confirm your password" not in hostile.text
        assert token_probe(server, client, client["client_secret"]) == 400
    finally:
        http.close()


def test_L10_a_new_api_key_and_a_key_rotation_need_the_password_after_the_window(server: Server) -> None:
    """L-10: creating an LRS (API) key outside the window shows the prompt and creates nothing; the
    prompt carries the form's fields, so posting it with the password creates the key as typed.
    Rotating a key: refused without the password (the old secret still works), done with it."""
    http, csrf = sign_in(server, "a", "adminA")
    try:
        made = http.post("/console/a/keys", data={"csrf_token": csrf, "name": "fresh-key", "scope:all": "on"})
        assert made.status_code == 200 and "The key was created." in made.text

        outside_the_window(server, http)
        form = {"csrf_token": csrf, "name": "needs-password", "scope:statements/write": "on"}
        prompt = http.post("/console/a/keys", data=form)
        assert_prompt(prompt, 403)
        assert "To create the API key needs-password, enter your password again." in prompt.text
        names = [k["name"] for k in server.cli_json("apikey", "list", "--tenant", "a")["keys"]]
        assert "fresh-key" in names and "needs-password" not in names
        carried = hidden_of(prompt.text)
        assert carried == form
        created = http.post("/console/a/keys", data={**carried, FIELD: PASSWORD})
        assert created.status_code == 200 and "The key was created." in created.text
        (row,) = [
            k for k in server.cli_json("apikey", "list", "--tenant", "a")["keys"] if k["name"] == "needs-password"
        ]
        assert row["scopes"] == ["statements/write"]

        key = server.cli_json("apikey", "create", "--tenant", "a", "--name", "reauth-rotate-key")
        outside_the_window(server, http)
        rotate = f"/console/a/keys/{key['key']}/rotate"
        assert_prompt(http.post(rotate, data={"csrf_token": csrf}), 403)
        assert_prompt(
            http.post(rotate, data={"csrf_token": csrf, FIELD: WRONG}), 400, "That is not your current password."
        )
        assert xapi(server, "GET", "/statements", key, params={"limit": "1"}).status_code == 200
        rotated = http.post(rotate, data={"csrf_token": csrf, FIELD: PASSWORD})
        assert rotated.status_code == 200 and "The secret was rotated" in rotated.text
        assert xapi(server, "GET", "/statements", key, params={"limit": "1"}).status_code == 401
        assert xapi(server, "GET", "/statements", key | {"secret": secret_on(rotated)}).status_code == 200
    finally:
        http.close()


def test_L10_a_confidential_integration_is_created_only_after_the_password(server: Server) -> None:
    """L-10: a new confidential integration comes with a secret, so outside the window it waits for
    the password; everything typed (two redirect URIs on two lines, the choices) survives the prompt.
    A public integration has no secret and needs no password."""
    http, csrf = sign_in(server, "a", "adminA")
    try:
        outside_the_window(server, http)
        form = {
            "csrf_token": csrf,
            "name": "Kept <input>",
            "redirect_uris": "https://one.a.test/cb\r\nhttps://two.a.test/cb",
            "kind": "confidential",
            "refresh": "on",
            "scope:statements/read": "on",
        }
        prompt = http.post("/console/a/integrations", data=form)
        assert_prompt(prompt, 403)
        assert "Kept &lt;input&gt;" in prompt.text
        clients = server.cli_json("client", "list", "--tenant", "a")["clients"]
        assert not [c for c in clients if c["name"] == "Kept <input>"]
        carried = hidden_of(prompt.text)
        assert carried["redirect_uris"].splitlines() == ["https://one.a.test/cb", "https://two.a.test/cb"]
        assert {k: v for k, v in carried.items() if k != "redirect_uris"} == {
            k: v for k, v in form.items() if k != "redirect_uris"
        }
        created = http.post("/console/a/integrations", data={**carried, FIELD: PASSWORD})
        assert created.status_code == 200 and "The integration was created." in created.text
        (made,) = [
            c for c in server.cli_json("client", "list", "--tenant", "a")["clients"] if c["name"] == "Kept <input>"
        ]
        assert made["redirect_uris"] == ["https://one.a.test/cb", "https://two.a.test/cb"]
        assert made["scopes"] == ["statements/read"]

        outside_the_window(server, http)
        public = http.post(
            "/console/a/integrations",
            data={"csrf_token": csrf, "name": "No secret", "redirect_uris": "https://pub.a.test/cb", "kind": "public",
                  "scope:all": "on"},
        )  # fmt: skip
        assert public.status_code == 200 and "The integration was created." in public.text
    finally:
        http.close()


def test_L10_an_owner_manages_admins_only_after_the_password(server: Server) -> None:
    """L-10: an owner's changes to admins (create, role, disable, enable) grant or take away access;
    after the window each is refused without the password and changes nothing."""
    target = server.admins[dedicated_admin(server, "reauth-target")]
    target_id = server.sql("SELECT id FROM accounts WHERE email = :e", {"e": target["email"]})[0][0]

    def state() -> tuple[str, bool]:
        role, disabled = server.sql("SELECT role, disabled FROM accounts WHERE id = :i", {"i": target_id})[0]
        return role, bool(disabled)

    http, csrf = sign_in(server, "a", "owner")
    try:
        assert (
            http.post(f"/console/a/admins/{target_id}/role", data={"csrf_token": csrf, "role": "viewer"}).status_code
            == 303
        )
        assert state() == ("viewer", False)
        outside_the_window(server, http)
        for action, data in (("role", {"role": "owner"}), ("disable", {})):
            refused = http.post(f"/console/a/admins/{target_id}/{action}", data={"csrf_token": csrf, **data})
            assert_prompt(refused, 403)
            wrong = http.post(
                f"/console/a/admins/{target_id}/{action}", data={"csrf_token": csrf, **data, FIELD: WRONG}
            )
            assert_prompt(wrong, 400, "That is not your current password.")
        assert state() == ("viewer", False)
        new = {"csrf_token": csrf, "email": "made-after-reauth@example.com", "password": PASSWORD, "role": "owner"}
        assert_prompt(http.post("/console/a/admins", data=new), 403)
        assert not server.sql("SELECT 1 FROM accounts WHERE email = 'made-after-reauth@example.com'")

        done = http.post(f"/console/a/admins/{target_id}/disable", data={"csrf_token": csrf, FIELD: PASSWORD})
        assert done.status_code == 303 and state() == ("viewer", True)
        assert http.post(f"/console/a/admins/{target_id}/enable", data={"csrf_token": csrf}).status_code == 303
        assert state() == ("viewer", False)
    finally:
        http.close()


def test_L10_N01_wrong_passwords_on_the_prompt_lock_the_account_as_sign_in_does(server: Server) -> None:
    """L-10, N-01: the prompt's wrong passwords count toward the sign-in's budget for the account
    (3 here): then even the right password is 429 with Retry-After, the action is not done, the
    account cannot sign in elsewhere either, and the lock is audited."""
    admin = dedicated_admin(server, "reauth-lock")
    label = dedicated_client(server, "reauth-lock")
    client = server.clients[label]
    path = f"/console/a/integrations/{client['client_id']}/rotate"
    http, csrf = sign_in(server, "a", admin)
    try:
        outside_the_window(server, http)
        for _ in range(3):
            assert_prompt(
                http.post(path, data={"csrf_token": csrf, FIELD: WRONG}), 400, "That is not your current password."
            )
        locked = http.post(path, data={"csrf_token": csrf, FIELD: PASSWORD})
        assert_prompt(locked, 429, "Too many failed sign-in attempts. Wait a few minutes, then try again.")
        assert int(locked.headers["retry-after"]) > 0
        assert token_probe(server, client, client["client_secret"]) == 400
        wait_for_audit(server, "reauth_throttled", lambda e: e.get("actor") == server.admins[admin]["email"])
        with httpx.Client(base_url=server.base_url) as other:
            page = other.get("/console/a/")
            creds = server.admins[admin]
            signed = other.post(
                "/console/a/login",
                data={"csrf_token": csrf_of(page.text), "email": creds["email"], "password": PASSWORD},
            )
            assert signed.status_code == 429 and "Too many failed sign-in attempts" in signed.text
    finally:
        http.close()


def test_L10_N01_the_change_password_form_counts_wrong_current_passwords(server: Server) -> None:
    """L-10, N-01: "My account" asks for the current password; its wrong attempts now count toward
    the sign-in's lockout (they did not before), so the form is no way around it: after the budget
    even the right one is 429 and the password stays as it was."""
    admin = dedicated_admin(server, "reauth-pw")
    email = server.admins[admin]["email"]
    new = "a new passphrase for the lock test"
    http, csrf = sign_in(server, "a", admin)
    try:

        def change(current: str) -> httpx.Response:
            return http.post(
                "/console/a/account/password",
                data={"csrf_token": csrf, "current_password": current, "new_password": new, "confirm_password": new},
            )

        for _ in range(3):
            wrong = change(WRONG)
            assert wrong.status_code == 400
            assert '<p class="error" id="current_password-error">That is not your current password.</p>' in wrong.text
        locked = change(PASSWORD)
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
        assert 'id="current_password-error">Too many failed sign-in attempts.' in locked.text
        failures = [e for e in audit_events(server, "reauth_failed") if e.get("actor") == email]
        assert len(failures) == 3 and {e["action"] for e in failures} == {"password_change"}
        # Once the lock has run out, the old password still signs in: nothing was changed.
        server.sql("UPDATE throttles SET locked_until = 0, failures = 0")
        sign_in(server, "a", admin)[0].close()
        # And the right current password changes it, refreshing this session's authentication.
        outside_the_window(server, http)
        before = authenticated_at(server, http)
        assert change(PASSWORD).status_code == 303
        assert authenticated_at(server, http) > before
        wait_for_audit(server, "reauth_succeeded", lambda e: e.get("actor") == email)
    finally:
        http.close()
