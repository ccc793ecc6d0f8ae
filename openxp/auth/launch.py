"""Short-lived Basic credentials and content-launch credentials.

Both are rows of ``store.launches``: a username, a SHA-256 digest of the
password, an expiry, and optionally the xAPI Agent the credential acts as
(plus, for a launch, the activity and registration). They authenticate only on
/xapi, as Basic; on /api they hold no scope. The Rustici launch mechanism puts
``auth=Basic base64(username:password)`` into the content URL, which content
uses as its Authorization header unchanged.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import unquote_plus

from openxp import crypto
from openxp.auth.principal import Principal
from openxp.store.launches import Credential

# What a short-lived credential may do on /xapi; an actor-bound one is further
# confined to its actor (and activity/registration) by openxp.auth.confine.
LRS_SCOPES = frozenset({"statements/write", "statements/read", "state", "profile"})
LAUNCH_USERNAME_PREFIX = "lx_"
# Stored kinds of content-launch credentials: the Rustici mechanism's and cmi5's.
LAUNCH_KINDS = frozenset({"launch", "cmi5"})


def password_digest(password: str) -> str:
    """Digest of the password as a Basic header will deliver it: ``wire.parse_basic``
    undoes form-encoding, so the stored digest is of the decoded form too."""
    return crypto.digest(unquote_plus(password))


def new_launch_pair() -> tuple[str, str]:
    """A random username (96 bits) and password (256 bits), URL-safe alphabet only."""
    return LAUNCH_USERNAME_PREFIX + crypto.random_token(12), crypto.new_credential()


def basic_value(username: str, password: str) -> str:
    """The ``auth`` launch parameter: the whole Authorization header value."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def auth_token(username: str, password: str) -> str:
    """cmi5 8.2.1's ``auth-token``: the Basic credentials the AU sends after ``Basic``."""
    return basic_value(username, password).removeprefix("Basic ")


def principal(record: Credential, tenant_name: str) -> Principal:
    restrictions: dict[str, str] = {}
    if record.actor_key is not None:
        restrictions["actor_key"] = record.actor_key
    if record.activity_id is not None:
        restrictions["activity"] = record.activity_id
    if record.registration is not None:
        restrictions["registration"] = record.registration
    if record.session_id is not None:
        restrictions["session"] = record.session_id
    actor: dict[str, Any] | None = record.actor
    return Principal(
        kind="launch" if record.kind in LAUNCH_KINDS else "shortlived",
        tenant_id=record.tenant_id,
        tenant=tenant_name,
        scopes=LRS_SCOPES,
        key=record.username,
        actor=actor,
        restrictions=restrictions,
    )
