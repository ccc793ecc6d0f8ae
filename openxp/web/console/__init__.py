"""The tenant console under ``/console/{tenant}/``: server-rendered pages and plain forms.

Every route but the sign-in form goes through ``context.console_page`` (tenant, session,
Origin, CSRF, role), so a page cannot forget a check.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from openxp.web.console import account, admins, audit_log, connected, entry, integrations, keys, learners, records


async def _slash(request: Request) -> Response:
    return RedirectResponse(f"/console/{request.path_params['tenant'][:63]}/", status_code=308)


def routes() -> list[BaseRoute]:
    t = "/console/{tenant}"
    return [
        Route(t, _slash, methods=["GET"]),
        Route(f"{t}/", entry.home, methods=["GET"]),
        Route(f"{t}/login", entry.login, methods=["POST"]),
        Route(f"{t}/logout", entry.logout, methods=["POST"]),
        Route(f"{t}/integrations", integrations.list_page, methods=["GET"]),
        Route(f"{t}/integrations", integrations.create, methods=["POST"]),
        Route(f"{t}/integrations/new", integrations.new_page, methods=["GET"]),
        Route(f"{t}/integrations/{{client_id}}", integrations.detail, methods=["GET"]),
        Route(f"{t}/integrations/{{client_id}}/{{action}}", integrations.act, methods=["POST"]),
        Route(f"{t}/connected", connected.list_page, methods=["GET"]),
        Route(f"{t}/connected/{{grant_id}}/revoke", connected.revoke, methods=["POST"]),
        Route(f"{t}/keys", keys.list_page, methods=["GET"]),
        Route(f"{t}/keys", keys.create, methods=["POST"]),
        Route(f"{t}/keys/{{key}}/{{action}}", keys.act, methods=["POST"]),
        Route(f"{t}/learners", learners.search_page, methods=["GET"]),
        Route(f"{t}/learners/view", learners.learner_page, methods=["GET"]),
        Route(f"{t}/learners/import", learners.import_page, methods=["GET"]),
        Route(f"{t}/learners/import", learners.import_post, methods=["POST"]),
        Route(f"{t}/admins", admins.list_page, methods=["GET"]),
        Route(f"{t}/admins", admins.create, methods=["POST"]),
        Route(f"{t}/admins/{{account_id}}/{{action}}", admins.act, methods=["POST"]),
        Route(f"{t}/records", records.page, methods=["GET"]),
        Route(f"{t}/records.csv", records.export_csv, methods=["GET"]),
        Route(f"{t}/records/{{statement_id}}", records.detail, methods=["GET"]),
        Route(f"{t}/audit", audit_log.page, methods=["GET"]),
        Route(f"{t}/audit.csv", audit_log.export, methods=["GET"]),
        Route(f"{t}/account", account.page, methods=["GET"]),
        Route(f"{t}/account/password", account.change_password, methods=["POST"]),
        Route(f"{t}/account/sessions/{{ref}}/end", account.end_session, methods=["POST"]),
    ]
