"""Security events as one JSON object per line on the ``openxp.audit`` logger.

Callers pass ids and outcomes, never secrets: a credential is referred to by its
public id or by the first 8 hex digits of its digest. JSON encoding escapes
CR/LF, so a hostile value cannot forge a log line (P-03).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson

logger = logging.getLogger("openxp.audit")


def event(name: str, *, severity: str = "info", **fields: Any) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return
    record = {"ts": round(time.time(), 3), "event": name, "severity": severity}
    record.update({k: v for k, v in fields.items() if v is not None})
    level = logging.WARNING if severity in {"high", "warning"} else logging.INFO
    logger.log(level, orjson.dumps(record, default=str).decode())


def ref(digest: str) -> str:
    """A short, non-secret reference to a stored credential."""
    return digest[:8]
