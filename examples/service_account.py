"""A service account (no admin involved) posting learning records to /xapi.

    openxp client create --tenant T --name "HR sync" --grant-type client_credentials \
        --scope statements/write --json
    OPENXP_URL=... CXP_TENANT=T CXP_CLIENT_ID=... CXP_CLIENT_SECRET=... \
        python examples/service_account.py learner@example.com https://courses.example.com/onboarding

Authlib's httpx client fetches a token with the client credentials grant (RFC 6749 4.4) and,
because it is told ``grant_type="client_credentials"``, fetches a new one by itself when the old
one is about to expire: there is no refresh token to keep. Prints the stored statement ids.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from typing import Any

from authlib.integrations.httpx_client import OAuth2Client

XAPI_VERSION = "1.0.3"


def service_client(base_url: str, client_id: str, client_secret: str, **httpx_options: Any) -> OAuth2Client:
    """Use it in a ``with`` block and call ``fetch_token(grant_type="client_credentials")`` once."""
    return OAuth2Client(
        client_id,
        client_secret,
        token_endpoint=f"{base_url}/auth/oauth/token",
        grant_type="client_credentials",
        scope=os.environ.get("CXP_SCOPE"),
        timeout=30,
        **httpx_options,
    )


def completed(email: str, activity: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "actor": {"objectType": "Agent", "mbox": f"mailto:{email}"},
        "verb": {"id": "http://adlnet.gov/expapi/verbs/completed", "display": {"en-US": "completed"}},
        "object": {"objectType": "Activity", "id": activity},
    }


def post_statements(session: OAuth2Client, base_url: str, tenant: str, statements: list[dict[str, Any]]) -> list[str]:
    response = session.post(
        f"{base_url}/xapi/statements",
        json=statements,
        headers={"X-CXP-Tenant": tenant, "X-Experience-API-Version": XAPI_VERSION},
    )
    response.raise_for_status()
    ids: list[str] = response.json()
    return ids


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    base_url = os.environ["OPENXP_URL"].rstrip("/")
    with service_client(base_url, os.environ["CXP_CLIENT_ID"], os.environ["CXP_CLIENT_SECRET"]) as session:
        session.fetch_token(grant_type="client_credentials")
        ids = post_statements(session, base_url, os.environ["CXP_TENANT"], [completed(argv[1], argv[2])])
    print(json.dumps({"stored": ids}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
