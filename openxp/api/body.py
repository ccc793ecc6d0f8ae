"""Request bodies of the ClearXP API: JSON read within a size limit and parsed strictly."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from openxp import wire
from openxp.api.errors import TooLarge, UnsupportedMedia, ValidationFailed
from openxp.httpio import BodyTooLarge, media_type, read_body


async def json_body(request: Request, limit: int) -> Any:
    return parse_json_body(await json_bytes(request, limit))


async def json_bytes(request: Request, limit: int) -> bytes:
    if media_type(request) != "application/json":
        raise UnsupportedMedia("send the body as application/json (or text/csv where accepted)")
    try:
        return await read_body(request, limit)
    except BodyTooLarge as exc:
        raise TooLarge(str(exc)) from None


def parse_json_body(raw: bytes) -> Any:
    if not raw.strip():
        # The seed's step 4 example posts no body at all: treat it as an empty request.
        return {}
    try:
        return wire.parse_json(raw, reject_duplicates=False)
    except wire.WireError as exc:
        raise ValidationFailed(str(exc), prop="body") from None
