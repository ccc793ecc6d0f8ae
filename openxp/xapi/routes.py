"""The routes of /xapi (kept out of the package's __init__, so that importing one
module of the LRS, e.g. ``shape`` from ``openxp.auth.confine``, does not import them all)."""

from __future__ import annotations

from starlette.routing import Mount, Route, Router

from openxp.xapi import about, documents, statements
from openxp.xapi.cors import CORS


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
