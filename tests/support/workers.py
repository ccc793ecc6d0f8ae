"""Which worker of a test server holds a client connection: the test can then talk to every
worker on purpose. A kept-alive HTTP connection stays with the worker that accepted it; its
server-side socket is found in /proc/net/tcp (by the two ports) and its owner among the server's
processes (by the socket's inode in /proc/PID/fd)."""

from __future__ import annotations

import http.client
import os
from pathlib import Path
from typing import Any

from tests.support.server import Server, _alive_in_group


def _server_side_inode(server_port: int, client_port: int) -> str | None:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if int(local.rsplit(":", 1)[1], 16) == server_port and int(remote.rsplit(":", 1)[1], 16) == client_port:
            return inode
    return None


def holder(server: Server, connection: http.client.HTTPConnection) -> int | None:
    """The pid of the server process at the other end of ``connection`` (after a request)."""
    assert server.process is not None and connection.sock is not None
    client_port = connection.sock.getsockname()[1]
    inode = _server_side_inode(connection.port, client_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in _alive_in_group(server.process.pid):
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == target:
                    return pid
            except OSError:
                continue
    return None


class Pinned:
    """A kept-alive connection to one worker."""

    def __init__(self, server: Server) -> None:
        host, port = server.base_url.removeprefix("http://").rsplit(":", 1)
        self.connection = http.client.HTTPConnection(host, int(port), timeout=30)
        self.status("GET", "/healthz")
        self.pid = holder(server, self.connection)

    def status(self, method: str, path: str, body: bytes | None = None, **headers: Any) -> int:
        self.connection.request(method, path, body=body, headers=headers)
        response = self.connection.getresponse()
        response.read()
        return response.status

    def close(self) -> None:
        self.connection.close()


def one_per_worker(server: Server, workers: int = 2, attempts: int = 200) -> list[Pinned]:
    """A kept-alive connection to each of the server's ``workers`` workers."""
    found: dict[int, Pinned] = {}
    for _ in range(attempts):
        pinned = Pinned(server)
        if pinned.pid is not None and pinned.pid not in found:
            found[pinned.pid] = pinned
            if len(found) == workers:
                return list(found.values())
        else:
            pinned.close()
    raise AssertionError(f"reached {len(found)} of {workers} workers in {attempts} connections")
