"""The operations of the OpenAPI document, surface by surface.

Each surface answers its own error shape: ``OAuthError`` on /auth/oauth,
``ClearXPError`` on /api, ``XapiError`` on /xapi (see ``schemas``).
"""

from __future__ import annotations

from typing import Any

from openxp.openapi.schemas import UUID_PATTERN, Schema, array, ref, string

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
HTML = "text/html"

PHRASES = {
    200: "OK",
    204: "No content",
    303: "See Other: the browser goes on (login, consent, or back to the client)",
    400: "Bad request",
    401: "The credentials are missing or refused (WWW-Authenticate says how to authenticate)",
    403: "The credentials are valid but may not do this",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    412: "Precondition failed (If-Match / If-None-Match)",
    413: "The body is too large",
    414: "The request URI is too long",
    415: "Unsupported Content-Type",
    429: "Too many requests; retry after Retry-After seconds",
    503: "Unavailable; retry later",
}
RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}}
CHALLENGE = {"WWW-Authenticate": {"schema": {"type": "string"}}}
SURFACE_ERROR = {"oauth": "OAuthError", "api": "ClearXPError", "xapi": "XapiError"}


def content(schema: Schema, *media_types: str) -> dict[str, Any]:
    return {media: {"schema": schema} for media in (media_types or (JSON,))}


def answer(status: int, schema: Schema | None = None, *media_types: str, description: str = "") -> dict[str, Any]:
    response: dict[str, Any] = {"description": description or PHRASES[status]}
    if schema is not None:
        response["content"] = content(schema, *media_types)
    return response


def errors(surface: str, *statuses: int) -> dict[str, Any]:
    schema = ref(SURFACE_ERROR[surface])
    responses = {}
    for status in statuses:
        response = answer(status, schema)
        if status == 401 and surface != "oauth":
            response["headers"] = CHALLENGE
        if status in (429, 503):
            response["headers"] = RETRY_AFTER
        responses[str(status)] = response
    return responses


def html_pages(*statuses: int) -> dict[str, Any]:
    return {str(s): answer(s, {"type": "string"}, HTML) for s in statuses}


def query(name: str, schema: Schema, description: str = "", *, required: bool = False) -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": "query", "required": required, "schema": schema}
    if description:
        parameter["description"] = description
    return parameter


def header(name: str, description: str = "") -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "schema": {"type": "string"}, "description": description}


TENANT = {"$ref": "#/components/parameters/Tenant"}
XAPI_VERSION = {"$ref": "#/components/parameters/XapiVersion"}


def operation(
    tag: str,
    operation_id: str,
    summary: str,
    responses: dict[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    security: list[dict[str, list[str]]] | None = None,
    description: str = "",
) -> dict[str, Any]:
    op: dict[str, Any] = {"tags": [tag], "operationId": operation_id, "summary": summary, "responses": responses}
    if description:
        op["description"] = description
    if parameters:
        op["parameters"] = parameters
    if body is not None:
        op["requestBody"] = body
    if security is not None:
        op["security"] = security
    return op


def body(schema: Schema, *media_types: str, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": content(schema, *media_types)}


def body_of(per_media: dict[str, Schema], *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {media: {"schema": schema} for media, schema in per_media.items()}}


# -- /auth/oauth ---------------------------------------------------------------

# The secret in the body, HTTP Basic, or none (a public client).
CLIENT_AUTH: list[dict[str, list[str]]] = [{}, {"clientBasic": []}]
OAUTH_ERRORS = (400, 401, 413, 415, 429)


def oauth_paths() -> dict[str, Any]:
    token_params = ref("TokenParameter")
    return {
        "/auth/oauth/authorize": {
            "get": operation(
                "oauth",
                "authorize",
                "Step 1: the authorization request (a browser page: login, then consent)",
                {**html_pages(200, 400, 414), "303": answer(303)},
                parameters=[
                    query("response_type", string(enum=["code"]), required=True),
                    query("client_id", string(), required=True),
                    query("redirect_uri", string(), "one of the client's registered URIs"),
                    query("state", string()),
                    query("scope", string("space-separated scopes")),
                    query("code_challenge", string("RFC 7636 S256 challenge")),
                    query("code_challenge_method", string(enum=["S256"])),
                ],
                security=[],
                description="Errors the client can be told about go back to the redirect URI (303, with `iss`, "
                "RFC 9207); others are shown as an HTML page.",
            )
        },
        "/auth/oauth/consent": {
            "get": operation(
                "oauth",
                "consentPage",
                "The consent page of a signed-in admin",
                html_pages(200, 400, 403),
                parameters=[query("interaction", string(), required=True)],
                security=[],
            ),
            "post": operation(
                "oauth",
                "consent",
                "The admin's decision; redirects to the client with a code (or access_denied)",
                {**html_pages(400, 403), "303": answer(303)},
                body=body(ref("ConsentForm"), FORM),
                security=[],
                description="A browser form: needs the session cookie and its CSRF token.",
            ),
        },
        "/auth/oauth/token": {
            "post": operation(
                "oauth",
                "token",
                "Steps 3 and refresh: exchange a code or a refresh token for tokens",
                {"200": answer(200, ref("TokenResponse")), **errors("oauth", *OAUTH_ERRORS)},
                body=body(ref("TokenRequest"), JSON, FORM),
                security=CLIENT_AUTH,
                description="A JSON body (as ClearXP documents) or an RFC 6749 form body; parameters never in the URL.",
            )
        },
        "/auth/oauth/revoke": {
            "post": operation(
                "oauth",
                "revoke",
                "RFC 7009 revocation (200 even for an unknown token)",
                {"200": answer(200), **errors("oauth", *OAUTH_ERRORS)},
                body=body(token_params, FORM, JSON),
                security=CLIENT_AUTH,
            )
        },
        "/auth/oauth/introspect": {
            "post": operation(
                "oauth",
                "introspect",
                "RFC 7662 introspection of the caller's own tokens",
                {"200": answer(200, ref("Introspection")), **errors("oauth", *OAUTH_ERRORS)},
                body=body(token_params, FORM, JSON),
                security=CLIENT_AUTH,
            )
        },
        "/.well-known/oauth-authorization-server": {
            "get": operation(
                "oauth",
                "metadata",
                "RFC 8414 metadata",
                {"200": answer(200, ref("ServerMetadata"))},
                security=[],
            )
        },
    }


# -- /api ----------------------------------------------------------------------

API_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
API_ERRORS = (400, 401, 403, 429)
JSON_BODY_ERRORS = (*API_ERRORS, 413, 415)


def api_op(operation_id: str, summary: str, ok: dict[str, Any], *extra: int, **kwargs: Any) -> dict[str, Any]:
    statuses = sorted({*API_ERRORS, *extra})
    parameters = [TENANT, *kwargs.pop("parameters", [])]
    return operation(
        "api", operation_id, summary, {**ok, **errors("api", *statuses)}, parameters=parameters, security=API_SECURITY,
        **kwargs,
    )  # fmt: skip


def api_paths() -> dict[str, Any]:
    page = [
        query("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}),
        query("skip", {"type": "integer", "minimum": 0, "default": 0}),
    ]
    account_source = header(
        "clear-account-source",
        "ClearXP's arbitrary string (printable, at most 200 characters) kept with the change in the audit log",
    )
    verify = query("verify", {"type": "boolean"}, "validate only; write nothing")
    csv = {"type": "string", "description": "a header row with name and one column per attribute"}
    import_body = {JSON: ref("ImportRequest"), "text/csv": csv}
    report = {"200": answer(200, ref("ImportReport"))}
    return {
        "/api/import/users": {
            "post": api_op(
                "importUsers",
                "Step 4: create or update users (JSON, or text/csv streamed in chunks)",
                report,
                413,
                415,
                503,
                parameters=[verify, account_source],
                body=body_of(import_body, required=False),
                description="Bad rows are reported and skipped. Scope users/import. 503: storage failed mid-import; "
                "the chunks written before it stay written.",
            ),
            "put": api_op(
                "importUsersPut",
                "The older import: a bare array of users (or text/csv)",
                report,
                413,
                415,
                503,
                parameters=[verify, account_source],
                body=body_of(
                    {JSON: {"oneOf": [ref("ImportRows"), ref("ImportRequest")]}, "text/csv": csv}, required=False
                ),
            ),
        },
        "/api/auth/me": {
            "get": api_op(
                "whoami", "The presented credential: tenant, kind, scopes", {"200": answer(200, ref("Whoami"))}
            )
        },
        "/api/actors": {
            "get": api_op(
                "listActors",
                "One page of the tenant's learners as xAPI Agents with attributes (scope actors/read)",
                {"200": answer(200, ref("Actors"))},
                parameters=page,
            )
        },
        "/api/actors/agents": {
            "put": api_op(
                "putAgent",
                "Create or update one learner (scope actors/write)",
                {"200": answer(200, ref("Actor"))},
                413,
                415,
                body=body(ref("Actor")),
                parameters=[account_source],
            )
        },
        "/api/actors/search": {
            "post": api_op(
                "searchActors",
                "Learners matching criteria (scope actors/read)",
                {"200": answer(200, ref("Actors"))},
                413,
                415,
                body=body(ref("ActorSearch"), required=False),
                parameters=page,
            )
        },
        "/api/actors/attributes": {
            "get": api_op(
                "actorAttributes",
                "Each attribute name in the tenant with a JSON Schema type (scope actors/read)",
                {"200": answer(200, ref("Attributes"))},
            )
        },
        "/api/actors/completions": {
            "get": api_op(
                "actorCompletions",
                "A learner's completion records, folded from their statements (scope actors/read)",
                {"200": answer(200, array(ref("Completion")))},
                parameters=[
                    query(
                        "agent",
                        string('the learner\'s identifier as JSON, e.g. {"mbox": "mailto:a@example.com"}'),
                        required=True,
                    ),
                    query("activityId", string("only this activity")),
                    query("status", string("passed, failed, completed or in-progress; comma-separated")),
                    query("registration", UUID),
                    query("expand", string("with activityId: each record's children, recursively", enum=["hierarchy"])),
                    *page,
                ],
            )
        },
        "/api/actors/erase": {
            "post": api_op(
                "eraseActor",
                "Erase one learner and their learning records, GDPR Art. 17 (scope actors/erase)",
                {"200": answer(200, ref("Erased"))},
                413,
                415,
                body=body(ref("EraseRequest")),
                description="Removes the learner record, the statements they are the actor of, their state and "
                "agent-profile documents and attachments no other statement uses, in one transaction; statements "
                "that only mention them keep a stable pseudonym instead. dryRun counts without removing.",
            )
        },
        "/api/auth/basic": {
            "post": api_op(
                "createBasic",
                "Short-lived Basic credentials for /xapi (scope launch)",
                {"200": answer(200, ref("BasicCreated"))},
                409,
                413,
                415,
                body=body(ref("BasicRequest")),
            )
        },
        "/api/auth/basic/{username}": {
            "delete": api_op(
                "revokeBasic",
                "End a live short-lived or launch credential now (scope launch)",
                {"204": answer(204)},
                404,
                parameters=[{"name": "username", "in": "path", "required": True, "schema": string()}],
            )
        },
        "/api/audit": {
            "get": api_op(
                "listAudit",
                "The tenant's audit log, newest first (scope audit/read)",
                {"200": answer(200, ref("AuditEvents"))},
                parameters=[
                    query("since", string("ISO 8601; events at or after it")),
                    query("until", string("ISO 8601; events before it")),
                    query("type", string("an event type; repeat for several")),
                    query("actor", string("exactly this actor")),
                    *page,
                ],
            )
        },
        "/api/export/statements": {
            "get": api_op(
                "exportStatements",
                "The tenant's statements matching the xAPI filters, oldest first, streamed as NDJSON or CSV"
                " (scope statements/read)",
                {
                    "200": {
                        "description": "One statement JSON per line (ndjson), or a header row and one row per"
                        " statement (csv); voided statements are left out",
                        "content": {
                            "application/x-ndjson": {"schema": string()},
                            "text/csv": {"schema": string()},
                        },
                    }
                },
                parameters=[*filter_params(), query("format", string(enum=["ndjson", "csv"]), "default ndjson")],
            )
        },
        "/api/launch": {
            "post": api_op(
                "launch",
                "A content-launch credential and the content URL that carries it (scope launch)",
                {"200": answer(200, ref("Launch"))},
                413,
                415,
                body=body(ref("LaunchRequest")),
                description="With mode cmi5 the URL carries endpoint, fetch, actor, registration and activityId "
                "(cmi5 8.1); LMS.LaunchData and the launched statement are written first, and an open session of "
                "the same registration is abandoned.",
            )
        },
        "/api/launch/fetch": {
            "post": operation(
                "api",
                "cmi5Fetch",
                "cmi5 8.2: the launch's auth-token, once; later calls answer error-code 1",
                {"200": answer(200, ref("Cmi5Fetch"))},
                parameters=[query("k", string("the key the launch URL's fetch parameter carries"), required=True)],
                security=[],
                description="Always 200 with JSON, as cmi5 8.2.1 asks: the token on the first call, error-code 1 "
                "after it (or once the launch expired), error-code 2 for a key openxp did not issue.",
            )
        },
    }


# -- /xapi ---------------------------------------------------------------------

XAPI_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
XAPI_ERRORS = (400, 401, 403, 413, 429)
AGENT_JSON = string("a JSON-encoded xAPI Agent")
IRI = string("an IRI")
UUID = string(pattern=UUID_PATTERN)
TIMESTAMP = string("ISO 8601 timestamp")
ANY_DOCUMENT: dict[str, Schema] = {
    JSON: {"type": "object"},
    "application/octet-stream": {"type": "string", "format": "binary"},
}
IF_MATCH = header("If-Match", "the document's current ETag")
IF_NONE_MATCH = header("If-None-Match", "* to write only when there is no document")


def xapi_op(operation_id: str, summary: str, ok: dict[str, Any], *extra: int, **kwargs: Any) -> dict[str, Any]:
    statuses = sorted({*XAPI_ERRORS, *extra})
    parameters = [XAPI_VERSION, TENANT, *kwargs.pop("parameters", [])]
    return operation(
        "xapi", operation_id, summary, {**ok, **errors("xapi", *statuses)}, parameters=parameters,
        security=XAPI_SECURITY, **kwargs,
    )  # fmt: skip


def _document_resource(name: str, key: list[dict[str, Any]], id_param: str) -> dict[str, Any]:
    ident = query(id_param, string())
    since = query("since", TIMESTAMP, f"with no {id_param}: only ids of documents changed since")
    read_ok = {
        "200": {
            "description": f"the document (its own Content-Type), or with no {id_param} a JSON array of ids",
            "content": {JSON: {"schema": {}}, "*/*": {"schema": {"type": "string"}}},
        }
    }
    write = [*key, query(id_param, string(), required=True), IF_MATCH, IF_NONE_MATCH]
    return {
        "get": xapi_op(f"get{name}", f"A {name} document, or the ids", read_ok, 404, parameters=[*key, ident, since]),
        "put": xapi_op(
            f"put{name}",
            f"Store a {name} document",
            {"204": answer(204)},
            409,
            412,
            parameters=write,
            body=body_of(ANY_DOCUMENT),
        ),
        "post": xapi_op(
            f"post{name}",
            f"Merge a JSON object into a {name} document",
            {"204": answer(204)},
            412,
            parameters=write,
            body=body_of(ANY_DOCUMENT),
        ),
        "delete": xapi_op(
            f"delete{name}",
            f"Delete a {name} document"
            + (" (or all of the agent's state for the activity)" if name == "State" else ""),
            {"204": answer(204)},
            412,
            parameters=[*key, ident if name == "State" else query(id_param, string(), required=True), IF_MATCH],
        ),
    }


def filter_params() -> list[dict[str, Any]]:
    """The statement filters (openxp.xapi.filters): GET /xapi/statements and the export."""
    return [
        query("agent", AGENT_JSON),
        query("verb", IRI),
        query("activity", IRI),
        query("registration", UUID),
        query("related_activities", {"type": "boolean"}),
        query("related_agents", {"type": "boolean"}),
        query("since", TIMESTAMP),
        query("until", TIMESTAMP),
    ]


def xapi_paths() -> dict[str, Any]:
    statement_filters = [
        query("statementId", UUID),
        query("voidedStatementId", UUID),
        *filter_params(),
        query("limit", {"type": "integer", "minimum": 0}, "0: the server's maximum (500)"),
        query("format", string(enum=["exact", "ids", "canonical"])),
        query("attachments", {"type": "boolean"}, "true: multipart/mixed with the attachment bytes"),
        query("ascending", {"type": "boolean"}),
        query("more", string("the continuation token of a previous page; takes no other parameter")),
    ]
    statements_or_one = {"oneOf": [ref("StatementResult"), ref("Statement")]}
    statements_body: dict[str, Schema] = {
        JSON: {"oneOf": [ref("Statement"), array(ref("Statement"))]},
        "multipart/mixed": {"type": "string"},
    }
    state_key = [
        query("activityId", IRI, required=True),
        query("agent", AGENT_JSON, required=True),
        query("registration", UUID),
    ]
    return {
        "/xapi/about": {
            "get": operation(
                "xapi",
                "about",
                "The xAPI versions this LRS speaks (no credential)",
                {"200": answer(200, ref("About"))},
                security=[],
            )
        },
        "/xapi/statements": {
            "get": xapi_op(
                "getStatements",
                "One statement (statementId, voidedStatementId) or a page of statements",
                {
                    "200": {
                        "description": "statements; with attachments=true as multipart/mixed",
                        "content": {
                            JSON: {"schema": statements_or_one},
                            "multipart/mixed": {"schema": {"type": "string"}},
                        },
                    }
                },
                404,
                parameters=statement_filters,
            ),
            "put": xapi_op(
                "putStatement",
                "Store one statement under the given id",
                {"204": answer(204)},
                409,
                parameters=[query("statementId", UUID, required=True)],
                body=body_of({JSON: ref("Statement"), "multipart/mixed": {"type": "string"}}),
                description="A Content-Type other than application/json or multipart/mixed is refused with 400 "
                "`unsupported_content_type` (xAPI Communication 3.2 lists no 415; the ADL suite expects 400).",
            ),
            "post": xapi_op(
                "postStatements",
                "Store one statement or a batch; answers their ids",
                {"200": answer(200, array(string()))},
                404,
                409,
                412,
                parameters=[
                    query("method", string(enum=["GET", "PUT", "POST", "DELETE"]), "xAPI 1.0.3 alternate syntax")
                ],
                body=body_of({**statements_body, FORM: ref("AlternateRequest")}),
                description="A Content-Type other than application/json or multipart/mixed is refused with 400 "
                "`unsupported_content_type`. With `?method=` (xAPI 1.0.3 only), a form body stands for another "
                "request to this resource.",
            ),
        },
        "/xapi/activities/state": _document_resource("State", state_key, "stateId"),
        "/xapi/activities/profile": _document_resource(
            "ActivityProfile", [query("activityId", IRI, required=True)], "profileId"
        ),
        "/xapi/agents/profile": _document_resource(
            "AgentProfile", [query("agent", AGENT_JSON, required=True)], "profileId"
        ),
        "/xapi/activities": {
            "get": xapi_op(
                "getActivity",
                "The Activity as the LRS knows it",
                {"200": answer(200, ref("Activity"))},
                parameters=[query("activityId", IRI, required=True)],
            )
        },
        "/xapi/agents": {
            "get": xapi_op(
                "getPerson",
                "A Person built from the Agent asked about",
                {"200": answer(200, ref("Person"))},
                parameters=[query("agent", AGENT_JSON, required=True)],
            )
        },
    }


def service_paths() -> dict[str, Any]:
    return {
        "/openapi.json": {
            "get": operation(
                "service", "openapi", "This document", {"200": answer(200, {"type": "object"})}, security=[]
            )
        },
    }


def paths() -> dict[str, Any]:
    return {**oauth_paths(), **api_paths(), **xapi_paths(), **service_paths()}
