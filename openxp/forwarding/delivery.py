"""One batch of statements to one target, over HTTP, at the address the SSRF check vetted.

- ``xapi``: ``POST {url}/statements`` with the statements as a JSON array (multipart/mixed with
  the attachment bodies they were sent with, when they had parts), the
  ``X-Experience-API-Version`` of the statements (a batch of mixed versions goes in one request
  per version) and the target's Basic or Bearer credentials. 200 or 204 is delivered. 409 means
  an id is already there: for one statement that is delivered (the target dedupes by id, which
  makes at-least-once exactly-once there); a batch answered 409 is sent again one by one, since
  the target refused all of it.
- ``webhook``: ``POST {url}`` with ``{"statements": [...]}`` and
  ``X-OpenXP-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>" under the target's
  secret>``; any 2xx is delivered.

Anything else (another status, a redirect, a timeout, a refused connection) is
``DeliveryFailed`` with a short reason that names no credential.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
import orjson

from openxp import crypto
from openxp.forwarding.destinations import Vetted, vet
from openxp.forwarding.errors import DeliveryFailed
from openxp.xapi import attachments

SIGNATURE_HEADER = "X-OpenXP-Signature"
XAPI_OK = {200, 204}


@dataclass(frozen=True)
class OpenTarget:
    """A target with its sealed values opened, for the time of one delivery."""

    id: int
    kind: str
    url: str
    authorization: str | None
    secret: str | None


def signature(secret: str, timestamp: int, body: str) -> str:
    return f"t={timestamp},v1={crypto.keyed(secret, f'{timestamp}.{body}')}"


def _version(payload: str) -> str:
    version = str(orjson.loads(payload).get("version") or "1.0.3")
    return "2.0.0" if version.startswith("2") else "1.0.3"


async def _post(
    client: httpx.AsyncClient, where: Vetted, path: str, body: bytes, headers: dict[str, str], content_type: str
) -> int:
    url = where.at_address(path)
    default_port = 443 if url.startswith("https") else 80
    host = where.host if where.port == default_port else f"{where.host}:{where.port}"
    try:
        response = await client.post(
            url,
            content=body,
            headers={"Host": host, "Content-Type": content_type, **headers},
            extensions={"sni_hostname": where.host},
        )
    except httpx.TimeoutException:
        raise DeliveryFailed("timed out") from None
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {str(exc)[:200]}") from None
    return response.status_code


async def deliver(
    client: httpx.AsyncClient,
    target: OpenTarget,
    payloads: Sequence[str],
    allowed: Sequence[str],
    files: dict[str, tuple[str, bytes]] | None = None,
) -> None:
    """Deliver ``payloads`` (stored statements, JSON text) to ``target`` or raise DeliveryFailed.
    ``files``: attachment bodies by sha2 (content type, bytes), sent to an LRS as multipart parts."""
    if not payloads:
        return
    where = await vet(target.url, allowed)
    if target.kind == "webhook":
        await _webhook(client, where, target, payloads)
        return
    by_version: dict[str, list[str]] = {}
    for payload in payloads:
        by_version.setdefault(_version(payload), []).append(payload)
    for version, group in sorted(by_version.items()):
        await _xapi(client, where, target, version, group, files or {})


def _parts_of(group: list[str], files: dict[str, tuple[str, bytes]]) -> dict[str, tuple[str, bytes]]:
    """The bodies the group's statements name (xAPI Communication 1.5.2: one part per sha2)."""
    parts: dict[str, tuple[str, bytes]] = {}
    for payload in group:
        if '"attachments"' in payload:
            for attachment in orjson.loads(payload).get("attachments", []):
                if attachment["sha2"] in files:
                    parts[attachment["sha2"]] = files[attachment["sha2"]]
    return parts


async def _xapi(
    client: httpx.AsyncClient,
    where: Vetted,
    target: OpenTarget,
    version: str,
    group: list[str],
    files: dict[str, tuple[str, bytes]],
) -> None:
    headers = {"X-Experience-API-Version": version}
    if target.authorization:
        headers["Authorization"] = target.authorization
    body, content_type = ("[" + ",".join(group) + "]").encode("utf-8"), "application/json"
    parts = _parts_of(group, files)
    if parts:
        body, content_type = attachments.multipart(body, parts)
    status = await _post(client, where, "/statements", body, headers, content_type)
    if status in XAPI_OK or (status == 409 and len(group) == 1):
        return
    if status == 409:
        for one in group:
            await _xapi(client, where, target, version, [one], files)
        return
    raise DeliveryFailed(f"the LRS answered HTTP {status}")


async def _webhook(client: httpx.AsyncClient, where: Vetted, target: OpenTarget, payloads: Sequence[str]) -> None:
    body = '{"statements":[' + ",".join(payloads) + "]}"
    headers = {SIGNATURE_HEADER: signature(target.secret or "", int(time.time()), body)}
    if target.authorization:
        headers["Authorization"] = target.authorization
    status = await _post(client, where, "", body.encode("utf-8"), headers, "application/json")
    if not 200 <= status < 300:
        raise DeliveryFailed(f"the webhook answered HTTP {status}")
