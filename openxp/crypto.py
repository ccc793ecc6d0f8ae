"""Randomness, digests, constant-time comparison and password hashing.

Every generated credential is 256 bits from ``secrets`` in the URL-safe alphabet
``[A-Za-z0-9_-]`` (so Basic encodings agree whether or not a client URL-encodes
first). What we store is its SHA-256 digest: the values are high-entropy, so a
fast digest is as safe as a slow KDF and keeps argon2 off every hot path. Human
passwords are the only thing hashed with argon2id.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ACCESS_TOKEN_PREFIX = "cxa_"
REFRESH_TOKEN_PREFIX = "cxr_"


def random_token(nbytes: int = 32) -> str:
    """URL-safe random text that never starts with ``-`` or ``_``, so that an id or secret
    pasted after a command-line tool's name is never mistaken for an option."""
    while True:
        value = secrets.token_urlsafe(nbytes)
        if value[0].isalnum():
            return value


def random_uuid() -> str:
    """A version 4 UUID from ``secrets``: cmi5 session ids and registrations, which content sees
    and which must not be guessable from one another."""
    return str(uuid.UUID(bytes=secrets.token_bytes(16), version=4))


def new_credential(prefix: str = "") -> str:
    return prefix + random_token(32)


def new_nonce() -> str:
    """256 random bits as 64 hex digits: a key that is stored, never sent."""
    return secrets.token_hex(32)


def derived_credential(prefix: str, nonce: str, label: str, presented: str) -> str:
    """``prefix`` + base64url(HMAC-SHA256(nonce, label || presented)): as long and as unguessable
    as ``new_credential``, and the same every time for the same inputs. Neither input alone
    yields it (the nonce is stored, the presented credential only as its digest)."""
    mac = hmac.new(bytes.fromhex(nonce), (label + presented).encode("utf-8", "surrogatepass"), hashlib.sha256)
    return prefix + base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")


def digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def equals(a: str, b: str) -> bool:
    """Constant-time string comparison (never ``==`` on a secret)."""
    return hmac.compare_digest(a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass"))


# A digest no real secret has: compared against when the id is unknown, so an
# unknown id costs the same as a wrong secret.
DUMMY_DIGEST = digest("openxp-dummy-" + random_token(16))


def keyed(key: str, message: str) -> str:
    return hmac.new(key.encode(), message.encode(), hashlib.sha256).hexdigest()


# RFC 9106 / OWASP: argon2id, 64 MiB, 3 passes, 4 lanes; stronger than the
# catalogue's minimum (19 MiB, t=2, p=1).
_hasher = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4, hash_len=32, salt_len=16, type=Type.ID)

# Longer passwords are refused before hashing, so nobody can make us argon2 megabytes.
MAX_PASSWORD_LENGTH = 1024
# A hash of a random password with the same parameters, verified when an email is unknown.
# Made on first use: hashing at import would cost every process (and the CLI) 64 MiB at start.
_dummy_password_hash: str | None = None


def _dummy_hash() -> str:
    global _dummy_password_hash
    if _dummy_password_hash is None:
        _dummy_password_hash = _hasher.hash(random_token(16))
    return _dummy_password_hash


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """Check a password; with no stored hash, still spend the same time."""
    try:
        return _hasher.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
