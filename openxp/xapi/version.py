"""xAPI version negotiation: every request names the version it speaks in
``X-Experience-API-Version`` and every response echoes the one it was answered in."""

from __future__ import annotations

import re

from starlette.requests import HTTPConnection

from openxp.runtime import runtime
from openxp.xapi.errors import VersionRequired, VersionUnsupported

VERSION_HEADER = "X-Experience-API-Version"
SUPPORTED = ("1.0.3", "2.0.0")
_V1 = re.compile(r"^1\.0(?:\.\d+)?$")
_V2 = re.compile(r"^2\.0(?:\.\d+)?$")


def default_version(conn: HTTPConnection) -> str:
    """What to echo when a request names no version (``OPENXP_XAPI_DEFAULT_VERSION``)."""
    return runtime(conn).settings.xapi_default_version


def is_v2(value: str) -> bool:
    return _V2.fullmatch(value.strip()) is not None


def resolve_version(value: str | None) -> str:
    if value is None:
        raise VersionRequired()
    value = value.strip()
    if _V1.fullmatch(value):
        return "1.0.3"
    if _V2.fullmatch(value):
        return "2.0.0"
    raise VersionUnsupported(f"unsupported xAPI version {value[:20]!r}; this LRS speaks 1.0.3 and 2.0.0")
