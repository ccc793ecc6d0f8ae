"""Debian's PgBouncer in transaction pooling mode, in front of the shared PostgreSQL (issue 14).

Started by the tests themselves on a free port, from a temporary folder, and stopped with them:
the shared PostgreSQL is never reconfigured. PgBouncer refuses to run as root, so as root it runs
as the ``postgres`` user (``runuser``), as the private clusters do (``pgcluster.py``)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.support.server import POSTGRES_ADMIN_URL, free_port

BINARY = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def available() -> bool:
    return Path(BINARY).is_file()


@dataclass
class Bouncer:
    root: Path
    port: int
    process: subprocess.Popen[bytes]

    def url_for(self, database_url: str) -> str:
        """The same database, reached through the pooler."""
        return make_url(database_url).set(host="127.0.0.1", port=self.port).render_as_string(hide_password=False)

    def log(self) -> str:
        path = self.root / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def start(pool_size: int = 20) -> Bouncer:
    """A PgBouncer (``pool_mode = transaction``) for every database of the shared server."""
    upstream = make_url(POSTGRES_ADMIN_URL)
    user = upstream.username or "postgres"
    root = Path(tempfile.mkdtemp(prefix="openxp-pgbouncer-"))
    port = free_port()
    (root / "users.txt").write_text(f'"{user}" ""\n')
    (root / "pgbouncer.ini").write_text(
        "\n".join(
            [
                "[databases]",
                f"* = host={upstream.host or '127.0.0.1'} port={upstream.port or 5432}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {root / 'users.txt'}",
                "pool_mode = transaction",
                f"default_pool_size = {pool_size}",
                "max_client_conn = 500",
                f"logfile = {root / 'pgbouncer.log'}",
                "ignore_startup_parameters = extra_float_digits",
                # The admin console (SHOW STATS) for the tests' own checks.
                f"admin_users = {user}",
                "",
            ]
        )
    )
    command = [BINARY, str(root / "pgbouncer.ini")]
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
        for path in root.iterdir():
            os.chown(path, owner.pw_uid, owner.pw_gid)
        command = ["runuser", "-u", "postgres", "--", *command]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=root)
    bouncer = Bouncer(root, port, process)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"pgbouncer exited early:\n{bouncer.log()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return bouncer
        except OSError:
            time.sleep(0.1)
    bouncer.stop()
    raise RuntimeError(f"pgbouncer did not listen on {port}:\n{bouncer.log()}")
