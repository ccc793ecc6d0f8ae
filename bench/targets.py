"""What the benchmark measures: the services, their operations, and one wrk target per pair."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

FORM = "application/x-www-form-urlencoded"


SERVICES = ("ceiling", "peer", "sqlite", "pg1", "pg2", "pg4", "pgb2")
OPENXP_OPS = (
    "code",
    "refresh",
    "client_credentials",
    "introspect",
    "api",
    "xapi-post1",
    "xapi-post100",
    "xapi-post100-fwd",
    "xapi-get",
)
OPS = {
    "ceiling": ("get", "post"),
    "peer": ("code", "refresh", "client_credentials", "introspect"),
    "sqlite": OPENXP_OPS,
    "pg1": OPENXP_OPS,
    "pg2": OPENXP_OPS,
    "pg4": OPENXP_OPS,
    "pgb2": OPENXP_OPS,
}
LABELS = {
    "ceiling": "Starlette bare (uvicorn, 1 process)",
    "peer": "oidc-provider (Node, in-memory)",
    "sqlite": "openxp, SQLite, 1 worker",
    "pg1": "openxp, PostgreSQL, 1 worker",
    "pg2": "openxp, PostgreSQL, 2 workers",
    "pg4": "openxp, PostgreSQL, 4 workers",
    "pgb2": "openxp, PostgreSQL through PgBouncer (transaction pooling), 2 workers",
}
OP_LABELS = {
    "get": "GET / (JSON)",
    "post": "POST / (JSON body)",
    "code": "code exchange",
    "refresh": "refresh (rotating)",
    "client_credentials": "client credentials",
    "introspect": "introspection",
    "api": "Bearer GET /api/auth/me",
    "xapi-post1": "POST /xapi/statements x1",
    "xapi-post100": "POST /xapi/statements x100",
    "xapi-post100-fwd": "POST /xapi/statements x100, forwarding on",
    "xapi-get": "GET /xapi/statements?agent=",
}
# Workers of each PostgreSQL service; ``pgb2`` reaches the database through a PgBouncer of its own.
PG_WORKERS = {"pg1": 1, "pg2": 2, "pg4": 4, "pgb2": 2}
XAPI_OPS = {"xapi-post1", "xapi-post100", "xapi-post100-fwd", "xapi-get"}


@dataclass
class Target:
    service: str
    op: str
    method: str = "GET"
    path: str = "/"
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    values: Path | None = None  # spent one per request
    available: int = 0
    spent: int = 0
    unmeasurable: str | None = None  # why there is no figure
    # Called with True before each run of the target and False after (forwarding on, then off).
    toggle: Callable[[bool], None] | None = None
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.service}:{self.op}"


XAPI_HEADERS = {"X-Experience-API-Version": "1.0.3", "Content-Type": "application/json"}
XAPI_AGENTS = 1000  # distinct actors in the stored statements: an agent filter matches 1/1000 of them


def statement(i: int) -> dict[str, Any]:
    return {
        "actor": {
            "objectType": "Agent",
            "name": f"Learner {i}",
            "mbox": f"mailto:learner-{i % XAPI_AGENTS}@bench.test",
        },
        "verb": {"id": "http://adlnet.gov/expapi/verbs/experienced", "display": {"en-US": "experienced"}},
        "object": {"objectType": "Activity", "id": f"https://bench.test/activities/{i % 50}"},
    }


def xapi_available() -> bool:
    """Whether this checkout has an LRS at all (the xAPI issue comes after the benchmark's)."""
    from openxp import app

    def paths(routes: list[Any]) -> Iterator[str]:
        for route in routes:
            yield getattr(route, "path", "")
            yield from (getattr(route, "path", "") + p for p in paths(getattr(route, "routes", None) or []))

    return any(p.startswith("/xapi") for p in paths(app._routes()))


def xapi_probe(base_url: str, headers: dict[str, str]) -> str | None:
    """None when GET /xapi/statements answers 200 with our Bearer token, else why it cannot be measured."""
    if not xapi_available():
        return "the xAPI LRS (openxp/xapi) does not exist yet"
    request = urllib.request.Request(base_url + "/xapi/statements?limit=1", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        return f"GET /xapi/statements answers {exc.code} ({exc.read()[:200]!r})"
    return None


def xapi_seed(base_url: str, headers: dict[str, str], first: int, end: int) -> None:
    """Store statements ``first``..``end`` through the LRS itself, 100 per POST, on one keep-alive connection."""
    import http.client

    conn = http.client.HTTPConnection(base_url.split("//", 1)[1], timeout=120)
    try:
        for start in range(first, end, 100):
            body = json.dumps([statement(i) for i in range(start, min(end, start + 100))])
            conn.request("POST", "/xapi/statements", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            if response.status != 200:
                raise RuntimeError(
                    f"seeding statements: POST /xapi/statements answered {response.status}: {payload[:300]!r}"
                )
    finally:
        conn.close()


def parse_targets(spec: str | None) -> list[tuple[str, str]]:
    if not spec:
        return [(s, op) for s in SERVICES for op in OPS[s]]
    chosen: list[tuple[str, str]] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        service, _, op = item.partition(":")
        if service not in OPS or (op and op not in OPS[service]):
            known = ", ".join(f"{s}[:{'|'.join(OPS[s])}]" for s in SERVICES)
            raise SystemExit(f"unknown target {item!r}; targets: {known}")
        for one in [op] if op else OPS[service]:
            if (service, one) not in chosen:
                chosen.append((service, one))
    return chosen


def _basic(client_id: str, secret: str) -> str:
    # RFC 6749 2.3.1: form-encode, then Basic.
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def token_targets(
    service: str, ops: list[str], token_path: str, introspect_path: str, creds: dict[str, Any], files: dict[str, Path]
) -> list[Target]:
    auth = {"Authorization": _basic(creds["client_id"], creds["client_secret"]), "Content-Type": FORM}
    redirect = quote(creds["redirect_uri"], safe="")
    access = files["access"].read_text().split()[0]
    made = {
        "code": Target(
            service,
            "code",
            "POST",
            token_path,
            f"grant_type=authorization_code&code={{v}}&redirect_uri={redirect}",
            auth,
            files["codes"],
        ),
        "refresh": Target(
            service, "refresh", "POST", token_path, "grant_type=refresh_token&refresh_token={v}", auth, files["refresh"]
        ),
        "introspect": Target(service, "introspect", "POST", introspect_path, f"token={access}", auth),
    }
    # RFC 6749 4.4: the client acts for itself; openxp's is a service account of its own (its
    # grant type allows nothing else), the peer's client has the grant beside the others.
    service_auth = {"Authorization": _basic(creds["service_id"], creds["service_secret"]), "Content-Type": FORM}
    made["client_credentials"] = Target(
        service, "client_credentials", "POST", token_path, "grant_type=client_credentials", service_auth
    )
    out = []
    for op in ops:
        if op in made:
            target = made[op]
            if target.values is not None:
                target.available = sum(1 for _ in target.values.open())
            out.append(target)
    return out
