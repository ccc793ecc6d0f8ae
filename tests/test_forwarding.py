"""Forwarding (issue 15, part 4): every statement a tenant accepts reaches its targets at least
once, and exactly once at a target that dedupes by id; over real servers on both databases.

- to a second openxp instance (xAPI, Basic credentials): every statement there, once;
- to a receiver that refuses connections, answers 500 and hangs for a while, then recovers;
- dead letters after OPENXP_FORWARDING_MAX_ATTEMPTS, and ``openxp forwarding retry``;
- kill -9 of the whole server mid-batch, then a restart: nothing lost;
- two workers: each row delivered once (the lease), none lost;
- SSRF: loopback, link-local and private targets refused without the allow list, at add time
  and at delivery time;
- credentials, URL paths and secrets not in list/status output nor in clear in the database;
- webhooks carry a valid ``X-OpenXP-Signature``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.support.receiver import Receiver
from tests.support.server import OPENXP, Server, served
from tests.support.statements import post_with_parts
from tests.xapi.lrs import VERSION, statement

FORWARDING_ENV = {
    # The test's own receivers and the second openxp listen on loopback: allowed for this server only.
    "OPENXP_FORWARDING_ALLOW_NETWORKS": "127.0.0.0/8",
    "OPENXP_FORWARDING_TIMEOUT": "2",
    "OPENXP_FORWARDING_MAX_ATTEMPTS": "10",
    "OPENXP_FORWARDING_BACKOFF": "1",
    "OPENXP_FORWARDING_BATCH": "20",
}


@pytest.fixture(scope="module")
def source() -> Iterator[Server]:
    with served(FORWARDING_ENV) as srv:
        yield srv


@pytest.fixture(scope="module")
def sink() -> Iterator[Server]:
    with served() as srv:
        yield srv


@pytest.fixture(scope="module")
def strict() -> Iterator[Server]:
    """Two attempts before a row is dead; loopback allowed only at 127.0.0.1 (the tests' other
    loopback address, 127.0.0.2, stands for an address the operator did not allow)."""
    env = {**FORWARDING_ENV, "OPENXP_FORWARDING_MAX_ATTEMPTS": "2", "OPENXP_FORWARDING_ALLOW_NETWORKS": "127.0.0.1/32"}
    with served(env, provision=False) as srv:
        yield srv


@pytest.fixture()
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.stop()


def new_tenant(server: Server) -> str:
    name = "fw" + secrets.token_hex(3)
    server.cli_json("tenant", "create", name)
    return name


def add_target(server: Server, tenant: str, url: str, kind: str = "xapi", auth: str | None = None) -> dict[str, Any]:
    args = ["forwarding", "add", "--tenant", tenant, "--url", url, "--kind", kind]
    if auth is not None:
        args.append("--auth-stdin")
    return server.cli_json(*args, stdin=None if auth is None else auth + "\n")


def status(server: Server, target_id: int) -> dict[str, Any]:
    found: dict[str, Any] = next(t for t in server.cli_json("forwarding", "status")["targets"] if t["id"] == target_id)
    return found


_KEYS: dict[tuple[str, str], str] = {}


def post(server: Server, tenant: str, count: int, batch: int = 25) -> list[str]:
    """POST ``count`` new statements to the tenant's LRS (one API key per tenant, made once)."""
    if (server.base_url, tenant) not in _KEYS:
        key = server.cli_json("apikey", "create", "--tenant", tenant, "--name", "feed")
        _KEYS[server.base_url, tenant] = base64.b64encode(f"{key['key']}:{key['secret']}".encode()).decode()
    ids: list[str] = []
    for start in range(0, count, batch):
        posted = httpx.post(
            f"{server.base_url}/xapi/statements",
            json=[statement() for _ in range(min(batch, count - start))],
            headers={"authorization": f"Basic {_KEYS[server.base_url, tenant]}", **VERSION},
            timeout=30,
        )
        assert posted.status_code == 200, posted.text
        ids += posted.json()
    return ids


def outbox(server: Server, target_id: int) -> dict[str, int]:
    """The target's outbox rows by state, read from the database (cheaper than a command in a loop)."""
    rows = server.sql(
        "SELECT dead, attempts > 0 AS failed, count(*) FROM forwarding_outbox WHERE target_id = :t GROUP BY 1, 2",
        {"t": target_id},
    )
    found = {"pending": 0, "failing": 0, "dead": 0}
    for dead, failed, count in rows:
        found["dead" if dead else "pending"] += count
        if failed and not dead:
            found["failing"] += count
    return found


def wait_for(condition: Callable[[], bool], timeout: float = 60, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def test_every_statement_reaches_a_second_openxp_exactly_once(source: Server, sink: Server) -> None:
    tenant = new_tenant(source)
    key = sink.apikeys["KA"]
    target = add_target(source, tenant, f"{sink.base_url}/xapi", auth=f"{key['key']}:{key['secret']}")
    assert target["kind"] == "xapi" and "secret" not in target

    posted = post(source, tenant, 120)

    def arrived() -> list[str]:
        return [r[0] for r in sink.sql("SELECT statement_id FROM xapi_statements")]

    wait_for(lambda: len(arrived()) >= len(posted), what="the statements at the second openxp")
    wait_for(lambda: outbox(source, target["id"])["pending"] == 0, what="the outbox to empty")
    assert sorted(arrived()) == sorted(posted)
    # At-least-once: the same rows delivered again (as after a crash) change nothing there.
    source.sql(
        "INSERT INTO forwarding_outbox (target_id, seq, created_at, attempts, next_attempt_at, dead)"
        " SELECT :t, seq, 0, 0, 0, false FROM xapi_statements"
        " WHERE tenant_id = (SELECT id FROM tenants WHERE name = :n)",
        {"t": target["id"], "n": tenant},
    )
    wait_for(lambda: outbox(source, target["id"])["pending"] == 0, what="the redelivery")
    assert sorted(arrived()) == sorted(posted)
    assert status(source, target["id"])["dead"] == 0


def test_a_receiver_that_fails_for_a_while_gets_everything_once_it_recovers(
    source: Server, receivers: list[Receiver]
) -> None:
    receiver = Receiver(["reset", "500", "hang", "500"], hang=4.0)
    receivers.append(receiver)
    tenant = new_tenant(source)
    target = add_target(source, tenant, f"{receiver.url}/xapi", auth="Bearer not-a-real-token")
    posted = post(source, tenant, 60)
    # Nothing listens yet: the first attempts are refused connections.
    wait_for(lambda: outbox(source, target["id"])["failing"] > 0, what="failed attempts")
    failing = status(source, target["id"])
    assert failing["pending"] == 60 and failing["lag_seconds"] > 0 and failing["last_error"]
    receiver.start()
    wait_for(lambda: set(receiver.counts()) == set(posted), timeout=90, what="every statement at the receiver")
    wait_for(lambda: outbox(source, target["id"])["pending"] == 0, what="the outbox to empty")
    steps = [r["step"] for r in receiver.requests]
    assert steps[:4] == ["reset", "500", "hang", "500"], steps
    assert all(r["headers"]["Authorization"] == "Bearer not-a-real-token" for r in receiver.requests)
    assert all(r["headers"]["X-Experience-API-Version"] == "1.0.3" for r in receiver.requests)
    assert all(r["path"] == "/xapi/statements" for r in receiver.requests)
    assert status(source, target["id"])["dead"] == 0


def test_dead_letter_after_the_limit_then_retry(strict: Server, receivers: list[Receiver]) -> None:
    server = strict
    receiver = Receiver(["500"] * 1000).start()
    receivers.append(receiver)
    tenant = new_tenant(server)
    target = add_target(server, tenant, receiver.url, kind="webhook")
    posted = post(server, tenant, 10)
    wait_for(lambda: outbox(server, target["id"])["dead"] == 10, what="dead letters")
    dead = status(server, target["id"])
    assert dead["pending"] == 0 and dead["failing"] == 0 and dead["dead"] == 10 and "HTTP 500" in dead["last_error"]
    attempts = len(receiver.requests)
    time.sleep(3)
    assert len(receiver.requests) == attempts, "a dead row was tried again"
    receiver.plan.clear()
    assert server.cli_json("forwarding", "retry", "--tenant", tenant, str(target["id"]))["requeued"] == 10
    wait_for(lambda: set(receiver.counts()) == set(posted), what="the retried statements")
    wait_for(lambda: outbox(server, target["id"]) == {"pending": 0, "failing": 0, "dead": 0}, what="an empty outbox")


def test_two_workers_deliver_each_row_once(source: Server, receivers: list[Receiver]) -> None:
    """The lease: both workers of ``source`` poll the same outbox; every row goes out once."""
    receiver = Receiver().start()
    receivers.append(receiver)
    tenant = new_tenant(source)
    target = add_target(source, tenant, receiver.url, kind="webhook")
    posted = post(source, tenant, 400, batch=100)
    wait_for(lambda: set(receiver.counts()) == set(posted), what="every statement at the receiver")
    wait_for(lambda: outbox(source, target["id"])["pending"] == 0, what="the outbox to empty")
    counts = receiver.counts()
    assert sorted(counts) == sorted(posted)
    assert max(counts.values()) == 1, [i for i, n in counts.items() if n > 1][:5]


def test_kill_9_mid_batch_loses_nothing(source: Server, receivers: list[Receiver]) -> None:
    receiver = Receiver(["hang"] * 3, hang=1.5).start()
    receivers.append(receiver)
    tenant = new_tenant(source)
    target = add_target(source, tenant, f"{receiver.url}/xapi", auth="user:pass")
    posted = post(source, tenant, 60)
    wait_for(lambda: receiver.in_flight > 0, what="a delivery under way")
    source.kill()
    source.start()
    more = post(source, tenant, 20)
    wait_for(lambda: set(receiver.counts()) == set(posted + more), timeout=90, what="every statement after the restart")
    wait_for(lambda: outbox(source, target["id"])["pending"] == 0, what="the outbox to empty")
    assert receiver.requests[0]["headers"]["Authorization"].startswith("Basic ")


def _add_without_allow_list(server: Server, tenant: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in server.env.items() if k != "OPENXP_FORWARDING_ALLOW_NETWORKS"}
    return subprocess.run(
        [*OPENXP, "forwarding", "add", "--tenant", tenant, "--url", url, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=server.data_dir,
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/xapi",
        "http://localhost/xapi",
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/xapi",
        "https://192.168.0.10/hook",
        "http://[::1]/xapi",
        "http://[::ffff:127.0.0.1]/xapi",
        "http://0.0.0.0/xapi",
        "ftp://example.com/xapi",
        "https://user:pass@example.com/xapi",
    ],
)
def test_ssrf_targets_are_refused_without_the_allow_list(source: Server, url: str) -> None:
    tenant = new_tenant(source)
    refused = _add_without_allow_list(source, tenant, url)
    assert refused.returncode == 1, refused.stdout
    assert refused.stdout == "" and "error:" in refused.stderr
    assert source.cli_json("forwarding", "list", "--tenant", tenant)["targets"] == []


def test_a_target_is_checked_again_at_delivery(strict: Server, receivers: list[Receiver]) -> None:
    """Added while its address was allowed, served without it: never contacted (DNS rebinding
    gets the same answer: the address is checked again before every delivery)."""
    server = strict
    receiver = Receiver(host="127.0.0.2").start()
    receivers.append(receiver)
    tenant = new_tenant(server)
    allowed = {**server.env, "OPENXP_FORWARDING_ALLOW_NETWORKS": "127.0.0.0/8"}
    added = subprocess.run(
        [*OPENXP, "forwarding", "add", "--tenant", tenant, "--url", receiver.url, "--kind", "webhook", "--json"],
        env=allowed,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=server.data_dir,
        check=True,
    )
    target = json.loads(added.stdout)
    post(server, tenant, 5)
    wait_for(lambda: outbox(server, target["id"])["dead"] == 5, what="refused deliveries")
    assert "loopback" in status(server, target["id"])["last_error"]
    assert receiver.requests == []


def test_credentials_are_sealed_and_never_shown(source: Server, receivers: list[Receiver]) -> None:
    receiver = Receiver().start()
    receivers.append(receiver)
    tenant = new_tenant(source)
    password = "pw-" + secrets.token_hex(8)
    path_token = "tok" + secrets.token_hex(8)
    xapi = add_target(source, tenant, f"{receiver.url}/{path_token}/xapi", auth=f"sentinel-user:{password}")
    bearer = "Bearer bt-" + secrets.token_hex(8)
    hook = add_target(source, tenant, f"{receiver.url}/hooks/{path_token}", kind="webhook", auth=bearer)
    secret = hook["secret"]
    assert secret and xapi["origin"] == receiver.url
    sentinels = [password, path_token, bearer, secret]
    listed = source.cli("forwarding", "list", "--tenant", tenant).stdout + json.dumps(
        source.cli_json("forwarding", "list", "--tenant", tenant)
    )
    shown = source.cli("forwarding", "status").stdout + json.dumps(source.cli_json("forwarding", "status"))
    for sentinel in sentinels:
        assert sentinel not in listed and sentinel not in shown
    rows = source.sql("SELECT * FROM forwarding_targets")
    dumped = repr(rows)
    for sentinel in sentinels:
        assert sentinel not in dumped
    # Still usable: the deliveries carry them.
    post(source, tenant, 3)
    wait_for(lambda: len(receiver.requests) >= 2, what="both deliveries")
    sent = {r["path"]: r["headers"].get("Authorization") for r in receiver.requests}
    assert sent[f"/{path_token}/xapi/statements"].startswith("Basic ")
    assert sent[f"/hooks/{path_token}"] == bearer
    assert password not in source.log() and secret not in source.log() and path_token not in source.log()


def test_webhook_signature_verifies(source: Server, receivers: list[Receiver]) -> None:
    receiver = Receiver().start()
    receivers.append(receiver)
    tenant = new_tenant(source)
    hook = add_target(source, tenant, f"{receiver.url}/hook", kind="webhook")
    receiver.secret = hook["secret"]
    posted = post(source, tenant, 30)
    wait_for(lambda: set(receiver.counts()) == set(posted), what="the signed deliveries")
    assert receiver.bad_signatures == 0
    # A receiver with another secret refuses them: the signature depends on the secret.
    wrong = Receiver(secret="whsec_wrong").start()
    receivers.append(wrong)
    other = add_target(source, new_tenant(source), wrong.url, kind="webhook")
    post(source, other["tenant"], 1)
    wait_for(lambda: wrong.bad_signatures > 0, what="a refused signature")
    assert wrong.received == []


def test_attachments_sent_as_parts_reach_the_second_openxp(source: Server, sink: Server) -> None:
    """A statement whose attachment came as a multipart part (no fileUrl) is forwarded with that
    part: the target LRS would refuse the statement without it (Data 2.4.11), and it would die in
    the outbox. The second openxp serves the same bytes."""
    tenant = new_tenant(source)
    key = sink.apikeys["KA"]
    target = add_target(source, tenant, f"{sink.base_url}/xapi", auth=f"{key['key']}:{key['secret']}")
    post(source, tenant, 1)  # makes the tenant's API key
    feed = base64.b64decode(_KEYS[source.base_url, tenant]).decode().split(":", 1)
    content = f"forwarded attachment {secrets.token_hex(8)}".encode()
    sent = statement()
    sent["id"] = str(uuid.uuid4())
    sent["attachments"] = [
        {
            "usageType": "http://example.com/attachment-usage/test",
            "display": {"en-US": "attachment"},
            "contentType": "text/plain",
            "length": len(content),
            "sha2": hashlib.sha256(content).hexdigest(),
        }
    ]
    post_with_parts(source, {"key": feed[0], "secret": feed[1]}, [sent], [content])

    wait_for(lambda: outbox(source, target["id"])["pending"] == 0, what="the outbox to empty")
    assert outbox(source, target["id"])["dead"] == 0
    got = httpx.get(
        f"{sink.base_url}/xapi/statements",
        params={"statementId": sent["id"], "attachments": "true"},
        auth=(key["key"], key["secret"]),
        headers=VERSION,
        timeout=30,
    )
    assert got.status_code == 200 and got.headers["content-type"].startswith("multipart/mixed"), got.text[:300]
    assert content in got.content
