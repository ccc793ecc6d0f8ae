"""Sealing what forwarding must send but nobody may read at rest: a target's URL (its path or
query may be a token), its credentials and a webhook's signing secret.

Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) under OPENXP_FORWARDING_KEY, or
else under the key in ``$OPENXP_DATA_DIR/forwarding.key``, made on first use with mode 0600.
OPENXP_FORWARDING_KEY may list several keys, comma-separated: the first seals, all open (key
rotation). Several hosts must share the key (set the variable on each).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from openxp.config import Settings
from openxp.forwarding.errors import SealingError

KEY_FILE = "forwarding.key"


class Sealer:
    def __init__(self, keys: list[bytes]) -> None:
        try:
            self._fernet = MultiFernet([Fernet(k) for k in keys])
        except ValueError:
            raise SealingError(
                "OPENXP_FORWARDING_KEY must be Fernet keys (32 url-safe base64-encoded bytes), comma-separated"
            ) from None

    def seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            raise SealingError("a sealed forwarding value does not open with the configured key") from None


def _key_file(path: Path) -> bytes:
    """The key in ``path``, written first (0600, exclusively: two processes agree) if missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as out:
                out.write(Fernet.generate_key() + b"\n")
                out.flush()
                os.fsync(out.fileno())
    key = path.read_bytes().strip()
    if not key:
        raise SealingError(f"{path} is empty; remove it to have a new key made, or set OPENXP_FORWARDING_KEY")
    return key


def sealer(settings: Settings) -> Sealer:
    if settings.forwarding_key:
        return Sealer([k.strip().encode("ascii") for k in settings.forwarding_key.split(",") if k.strip()])
    return Sealer([_key_file(settings.data_dir / KEY_FILE)])
