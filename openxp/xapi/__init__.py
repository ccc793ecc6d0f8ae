"""The xAPI Learning Record Store under /xapi (xAPI 1.0.3 and 2.0.0).

- ``http``: version header, credentials (Basic API keys, OAuth Bearer), CORS, errors;
- ``validate``: statement rules of xAPI-Data.md;
- ``shape``: statement rows and output formats;
- ``statements``, ``about``: the resources.
"""

from __future__ import annotations

from starlette.routing import Mount, Route, Router

from openxp.xapi import about, documents, statements
from openxp.xapi.http import CORS


def mount() -> Mount:
    routes = [
        Route("/about", about.about, methods=["GET"]),
        Route("/statements", statements.statements, methods=["GET", "PUT", "POST"]),
        Route("/activities/state", documents.state, methods=["GET", "PUT", "POST", "DELETE"]),
        Route("/activities/profile", documents.activity_profile, methods=["GET", "PUT", "POST", "DELETE"]),
        Route("/agents/profile", documents.agent_profile, methods=["GET", "PUT", "POST", "DELETE"]),
        Route("/activities", documents.activities, methods=["GET"]),
        Route("/agents", documents.agents, methods=["GET"]),
    ]
    return Mount("/xapi", app=CORS(Router(routes=routes)))
