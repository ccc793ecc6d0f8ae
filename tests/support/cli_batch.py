"""Several ``openxp`` commands in one interpreter, for provisioning a test server.

Every test server starts with the same sixteen commands (migrate, two tenants, three admins,
eight clients, two keys). As sixteen processes they cost about ten seconds of CPU per server, a
large share of the suite; here they share one start-up. The commands are openxp's own (the
Typer app, run by click's runner); the command line as a program, its exit codes and its
output streams, is tested through real processes elsewhere (tests/test_cli*.py).

Input on stdin: a JSON list of ``[args, stdin-or-null]``. Output on stdout: a JSON list of each
command's stdout. The first command that fails stops the batch with its stderr and exit code 1.
"""

from __future__ import annotations

import json
import sys

from typer.testing import CliRunner

from openxp.cli import app


def main() -> None:
    commands = json.load(sys.stdin)
    runner = CliRunner()
    outputs = []
    for args, stdin in commands:
        result = runner.invoke(app, args, input=stdin)
        if result.exit_code != 0:
            problem = result.stderr or repr(result.exception)
            sys.stderr.write(f"openxp {' '.join(args)} failed ({result.exit_code}): {problem}\n")
            sys.exit(1)
        outputs.append(result.stdout)
    json.dump(outputs, sys.stdout)


if __name__ == "__main__":
    main()
