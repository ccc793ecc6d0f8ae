"""RFC 7636, Proof Key for Code Exchange: ``S256`` only.

openxp's decisions (SECURITY.md): ``plain`` is refused; a challenge without a
method is refused rather than defaulted (RFC 7636 4.3's default is ``plain``);
a verifier presented for a code issued without a challenge fails (RFC 9700
2.1.1, the downgrade of D-09).
"""

from __future__ import annotations

import base64
import hashlib
import re

from openxp import crypto
from openxp.oauth.errors import InvalidGrant, InvalidRequest

METHODS_SUPPORTED = ["S256"]
# An S256 challenge is BASE64URL-NOPAD of 32 bytes: exactly 43 characters.
_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
# 4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=").decode("ascii")


def validate_challenge(challenge: str | None, method: str | None, *, required: bool) -> str | None:
    """Check the authorization request's PKCE parameters; returns the challenge to bind."""
    if challenge is None:
        if method is not None:
            raise InvalidRequest("code_challenge_method was sent without code_challenge")
        if required:
            raise InvalidRequest("this client must use PKCE: send code_challenge with code_challenge_method=S256")
        return None
    if method is None:
        raise InvalidRequest("code_challenge_method is required; only S256 is supported")
    if method not in METHODS_SUPPORTED:
        raise InvalidRequest("code_challenge_method not supported; only S256 is")
    if not _CHALLENGE.fullmatch(challenge):
        raise InvalidRequest("code_challenge must be 43 base64url characters (S256)")
    return challenge


def verify(challenge: str | None, verifier: str | None) -> None:
    """At the token endpoint: the verifier must match the bound challenge, and
    there must be no verifier when no challenge was bound."""
    if challenge is None:
        if verifier is not None:
            raise InvalidGrant("code_verifier sent but the code was issued without code_challenge")
        return
    if verifier is None:
        raise InvalidGrant("code_verifier is required for this code")
    if not _VERIFIER.fullmatch(verifier):
        raise InvalidGrant("code_verifier is malformed")
    if not crypto.equals(s256(verifier), challenge):
        raise InvalidGrant("code_verifier does not match code_challenge")
