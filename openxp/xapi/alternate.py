"""xAPI 1.0.3 Communication 1.3, the alternate request syntax: ``POST ?method=X``
with the parameters, headers and content in a form body, rewritten into the
request it stands for. xAPI 2.0 removed it, so a 2.0 request naming ``method``
is refused."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.types import Message

from openxp import wire
from openxp.httpio import read_body
from openxp.xapi.errors import BadRequest, InvalidMethod
from openxp.xapi.params import query_params
from openxp.xapi.version import is_v2

MAX_ALTERNATE_BODY = 16 * 1024 * 1024
# Form fields of the alternate syntax that stand for request headers.
ALTERNATE_HEADERS = frozenset(
    {"authorization", "x-experience-api-version", "content-type", "content-length", "if-match", "if-none-match"}
)
ALTERNATE_METHODS = frozenset({"GET", "HEAD", "PUT", "POST", "DELETE"})


def requested(request: Request) -> bool:
    return "method" in request.query_params


async def alternate(request: Request) -> Request:
    """The request the form stands for. It has a scope of its own (the real one still
    describes the POST, for the access log)."""
    params = query_params(request, frozenset({"method"}))
    if request.method != "POST":
        raise BadRequest("the alternate request syntax is only POST ?method=...")
    method = params["method"].upper()
    if method not in ALTERNATE_METHODS:
        raise InvalidMethod()
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise BadRequest("the alternate request syntax takes an application/x-www-form-urlencoded body")
    try:
        form = wire.single_values(wire.parse_query(await read_body(request, MAX_ALTERNATE_BODY)))
    except wire.WireError as exc:
        raise BadRequest(str(exc)) from None
    headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in {"content-type", "content-length"}}
    query: list[tuple[str, str]] = []
    content = form.pop("content", None)
    for name, value in form.items():
        if name.lower() in ALTERNATE_HEADERS:
            headers[name.lower()] = value
        else:
            query.append((name, value))
    if is_v2(headers.get("x-experience-api-version", "")):
        raise BadRequest("xAPI 2.0 does not accept the alternate request syntax")
    if method in {"PUT", "POST"} and content is None:
        raise BadRequest("the alternate request syntax needs the content field for PUT and POST")
    body = (content or "").encode()
    headers["content-length"] = str(len(body))
    headers.setdefault("content-type", "application/json")
    scope = dict(request.scope)
    scope["method"] = method
    scope["query_string"] = urlencode(query).encode()
    scope["headers"] = [(k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in headers.items()]
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)
