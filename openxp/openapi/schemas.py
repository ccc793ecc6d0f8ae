"""The reusable parts of the OpenAPI document: bodies, parameters, security schemes."""

from __future__ import annotations

from typing import Any

from openxp import scopes

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def string(description: str = "", **extra: Any) -> Schema:
    schema: Schema = {"type": "string", **extra}
    if description:
        schema["description"] = description
    return schema


def integer(description: str = "", **extra: Any) -> Schema:
    schema: Schema = {"type": "integer", **extra}
    if description:
        schema["description"] = description
    return schema


def obj(
    properties: dict[str, Schema], *, required: tuple[str, ...] = (), description: str = "", closed: bool = False
) -> Schema:
    schema: Schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if description:
        schema["description"] = description
    if closed:
        schema["additionalProperties"] = False
    return schema


def array(items: Schema, description: str = "", **extra: Any) -> Schema:
    schema: Schema = {"type": "array", "items": items, **extra}
    if description:
        schema["description"] = description
    return schema


UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
SCOPE_LIST = string("space-separated scopes: " + ", ".join(scopes.SCOPES))

# -- error shapes, one per surface -------------------------------------------

ERRORS: dict[str, Schema] = {
    "OAuthError": obj(
        {
            "error": string(
                "RFC 6749 5.2 code (invalid_request, invalid_client, invalid_grant, unauthorized_client, "
                "unsupported_grant_type, invalid_scope, unsupported_token_type, too_many_requests, server_error)"
            ),
            "error_description": string("a human-readable explanation"),
        },
        required=("error",),
        description="RFC 6749 error, sent with Cache-Control: no-store",
    ),
    "ClearXPError": obj(
        {
            "code": integer("the HTTP status"),
            "name": string("the HTTP reason phrase"),
            "error": string("a stable code, e.g. validation_error, unsupported_media_type, not_found"),
            "message": string(),
            "body": array(
                obj(
                    {
                        "name": string(),
                        "description": string(),
                        "property": string(),
                        "value": {},
                    },
                    required=("name", "description"),
                )
            ),
        },
        required=("code", "name", "error", "message", "body"),
        description="ClearXP's documented error body, with a stable error code added",
    ),
    "XapiError": obj(
        {
            "error": string("a stable code, e.g. bad_request, invalid_statement, unsupported_content_type"),
            "message": string(),
            "property": string("for an invalid statement: the path of the property at fault"),
        },
        required=("error", "message"),
    ),
}

# -- OAuth -------------------------------------------------------------------

OAUTH: dict[str, Schema] = {
    "TokenRequest": obj(
        {
            "grant_type": string(enum=["authorization_code", "refresh_token", "client_credentials"]),
            "code": string("authorization_code: the code from the redirect"),
            "redirect_uri": string("authorization_code: the redirect_uri of the authorization request"),
            "code_verifier": string("authorization_code: the PKCE verifier (RFC 7636)"),
            "refresh_token": string("refresh_token: the current cxr_ token"),
            "scope": SCOPE_LIST,
            "client_id": string(),
            "client_secret": string("client_secret_post; or send HTTP Basic instead"),
        },
        required=("grant_type",),
    ),
    "TokenResponse": obj(
        {
            "access_token": string(pattern="^cxa_"),
            "refresh_token": string(pattern="^cxr_"),
            "token_type": string(enum=["bearer"]),
            "expires_in": integer(),
            "scope": string(),
        },
        required=("access_token", "token_type", "expires_in"),
    ),
    "TokenParameter": obj(
        {
            "token": string(),
            "token_type_hint": string(enum=["access_token", "refresh_token"]),
            "client_id": string(),
            "client_secret": string(),
        },
        required=("token",),
        description="RFC 7009 / RFC 7662 request",
    ),
    "Introspection": obj(
        {
            "active": {"type": "boolean"},
            "scope": string(),
            "client_id": string(),
            "token_type": string(),
            "exp": integer(),
            "iat": integer(),
            "sub": string(),
            "tenant": string(),
            "iss": string(),
        },
        required=("active",),
    ),
    "ServerMetadata": obj(
        {
            "issuer": string(),
            "authorization_endpoint": string(),
            "token_endpoint": string(),
            "revocation_endpoint": string(),
            "introspection_endpoint": string(),
            "scopes_supported": array(string()),
            "service_documentation": string(),
        },
        required=("issuer", "authorization_endpoint", "token_endpoint"),
        description="RFC 8414 authorization server metadata",
    ),
    "ConsentForm": obj(
        {
            "csrf_token": string(),
            "interaction": string(),
            "decision": string(enum=["allow", "deny"]),
        },
        required=("csrf_token", "interaction", "decision"),
    ),
}

# -- xAPI ------------------------------------------------------------------

AGENT = obj(
    {
        "objectType": string(enum=["Agent", "Group"]),
        "name": string(),
        "mbox": string(pattern="^mailto:"),
        "mbox_sha1sum": string(pattern="^[0-9a-f]{40}$"),
        "openid": string(),
        "account": obj({"homePage": string(), "name": string()}, required=("homePage", "name")),
    },
    description="an xAPI Agent (or identified Group) with one inverse functional identifier",
)

XAPI: dict[str, Schema] = {
    "Agent": AGENT,
    "Statement": obj(
        {
            "id": string(pattern=UUID_PATTERN),
            "actor": ref("Agent"),
            "verb": obj({"id": string(), "display": {"type": "object"}}, required=("id",)),
            "object": {"type": "object"},
            "result": {"type": "object"},
            "context": {"type": "object"},
            "timestamp": string(),
            "stored": string(),
            "authority": {"type": "object"},
            "version": string(),
            "attachments": array({"type": "object"}),
        },
        required=("actor", "verb", "object"),
        description="an xAPI Statement (xAPI-Data 2.2); the LRS validates it in full",
    ),
    "StatementResult": obj(
        {"statements": array(ref("Statement")), "more": string("an IRL to the next page, or empty")},
        required=("statements", "more"),
    ),
    "About": obj(
        {"version": array(string()), "extensions": {"type": "object"}},
        required=("version",),
    ),
    "Activity": obj(
        {"objectType": string(enum=["Activity"]), "id": string(), "definition": {"type": "object"}},
        required=("objectType", "id"),
    ),
    "Person": obj(
        {
            "objectType": string(enum=["Person"]),
            "name": array(string()),
            "mbox": array(string()),
            "mbox_sha1sum": array(string()),
            "openid": array(string()),
            "account": array({"type": "object"}),
        },
        required=("objectType",),
    ),
    "AlternateRequest": obj(
        {
            "Authorization": string(),
            "X-Experience-API-Version": string(),
            "Content-Type": string(),
            "content": string("the body of the request it stands for"),
        },
        description="xAPI 1.0.3 Communication 1.3: the headers, parameters and content of the request it stands for",
    ),
}

# -- ClearXP API ---------------------------------------------------------------

ATTRIBUTES_EXTENSION = "http://clearlrs.com/api/ext/agent/attributes"
IMPORT_ROW = obj({"name": string(), "attributes": {"type": "object"}}, required=("attributes",))
PROBLEM = obj({"row": integer(), "type": string(), "value": {}, "message": string()})

AUDIT_EVENT = obj(
    {
        "id": integer(),
        "type": string("the event, e.g. login_succeeded, token_issued, refresh_reuse_detected"),
        "at": string("ISO 8601 UTC time"),
        "tenant": string(),
        "actor": {"type": ["string", "null"], "description": "who: an admin's email, a client id, an API key"},
        "ip": {"type": ["string", "null"], "description": "the caller's address where known"},
        "severity": string("info, warning or high"),
        "details": {"type": "object", "description": "the event's own fields; never a secret, code or token"},
    },
    required=("id", "type", "at", "tenant", "actor", "ip", "severity", "details"),
)

API: dict[str, Schema] = {
    "AuditEvents": obj({"events": array(AUDIT_EVENT, "newest first")}, required=("events",)),
    "ImportRequest": obj(
        {"users": array(IMPORT_ROW), "verify": {"type": "boolean", "description": "validate only; write nothing"}}
    ),
    "ImportRows": array(IMPORT_ROW, "the older PUT style: a bare array of users"),
    "ImportReport": obj(
        {
            "rows": integer(),
            "new": integer(),
            "existing": integer(),
            "skipped": integer(),
            "errorCount": integer(),
            "errors": array(PROBLEM),
            "warningCount": integer(),
            "warnings": array(PROBLEM),
        },
        required=("rows", "new", "existing", "skipped", "errorCount", "errors", "warningCount", "warnings"),
    ),
    "Actor": obj(
        {
            "objectType": string(enum=["Agent"]),
            "name": string(),
            "mbox": string(pattern="^mailto:"),
            "mbox_sha1sum": string(pattern="^[0-9a-f]{40}$"),
            "openid": string(),
            "account": obj({"homePage": string(), "name": string()}, required=("homePage", "name")),
            "extensions": obj(
                {ATTRIBUTES_EXTENSION: {"type": "object", "description": "the learner's attributes"}},
                description="ClearXP's extensions; the attributes live under " + ATTRIBUTES_EXTENSION,
            ),
        },
        description="ClearXP's Actor: an xAPI Agent, its attributes under the attributes extension",
    ),
    "Actors": array(ref("Actor"), "one page of actors (limit and skip are query parameters)"),
    "EraseRequest": obj(
        {
            "agent": obj(
                {
                    "objectType": string(enum=["Agent"]),
                    "name": string("ignored: only the identifier is used"),
                    "mbox": string(pattern="^mailto:"),
                    "mbox_sha1sum": string(pattern="^[0-9a-fA-F]{40}$"),
                    "openid": string(),
                    "account": obj({"homePage": string(), "name": string()}, required=("homePage", "name")),
                },
                description="the learner: an xAPI Agent with exactly one identifier",
            ),
            "dryRun": {
                "type": "boolean",
                "default": False,
                "description": "count what would be removed; remove nothing",
            },
        },
        required=("agent",),
        closed=True,
    ),
    "Erased": obj(
        {
            "dryRun": {"type": "boolean"},
            "removed": obj(
                {
                    name: integer()
                    for name in (
                        "learner",
                        "attributes",
                        "statements",
                        "stateDocuments",
                        "agentProfiles",
                        "attachments",
                        "pseudonymisedStatements",
                        "completionRecords",
                    )
                },
                description="what was removed (or, with dryRun, would be), by kind; pseudonymisedStatements "
                "kept their statement with the learner replaced by a pseudonym",
            ),
        },
        required=("dryRun", "removed"),
    ),
    "ActorSearch": obj(
        {
            "criteria": {
                "description": 'a criteria tree, e.g. {"=": [{"type": "attribute", "key": "Country"}, "NZ"]}; '
                "comparators and or = != < <= > >=, * wildcards",
            },
        },
        closed=True,
    ),
    "Attributes": obj(
        {
            "attributes": array(
                obj({"key": string(), "type": string(enum=["string", "number", "boolean"])}, required=("key", "type"))
            )
        },
        required=("attributes",),
    ),
    "Whoami": obj(
        {
            "tenant": string(),
            "kind": string(enum=["oauth", "apikey"]),
            "scope": string(),
            "client_id": string(),
            "key": string(),
        },
        required=("tenant", "kind", "scope"),
    ),
    "BasicRequest": obj(
        {
            "username": string(pattern="^[A-Za-z0-9._~@-]{1,64}$"),
            "password": string("16-256 printable ASCII characters; omitted: one is generated", minLength=16),
            "ttlMins": integer(minimum=1, maximum=1440),
            "data": obj({"actor": ref("Agent")}),
        },
        required=("username", "ttlMins"),
    ),
    "BasicCreated": obj(
        {"username": string(), "password": string("only when generated")},
        required=("username",),
    ),
    "Completion": obj(
        {
            "actor": ref("Agent"),
            "activity": obj({"objectType": string(), "id": string()}, required=("id",)),
            "registration": {"type": ["string", "null"]},
            "status": string(enum=["passed", "failed", "completed", "in-progress", "not-attempted"]),
            "completed": {"type": "boolean"},
            "success": {"type": ["boolean", "null"]},
            "score": obj({"scaled": {"type": "number"}}),
            "firstAccessed": {"type": ["string", "null"]},
            "lastAccessed": {"type": ["string", "null"]},
            "completedAt": {"type": ["string", "null"]},
            "statements": integer(),
            "children": array(ref("Completion"), "with expand=hierarchy"),
        },
        required=("activity", "status", "completed", "statements"),
    ),
    "LaunchRequest": obj(
        {
            "mode": string("rustici (the default) or cmi5", enum=["rustici", "cmi5"]),
            "url": string("the content's absolute http(s) URL"),
            "actor": ref("Agent"),
            "activity_id": string("the LMS's activity id for the content (cmi5: of the AU, 8.1.5)"),
            "registration": string("cmi5: generated when absent", pattern=UUID_PATTERN),
            "publisher_id": string("cmi5 only, required: the AU's id in the course structure"),
            "moveOn": string(
                "cmi5 only, default NotApplicable",
                enum=["Passed", "Completed", "CompletedAndPassed", "CompletedOrPassed", "NotApplicable"],
            ),
            "launchMode": string("cmi5 only, default Normal", enum=["Normal", "Browse", "Review"]),
            "masteryScore": {"type": "number", "minimum": 0, "maximum": 1, "description": "cmi5 only"},
            "launchParameters": string("cmi5 only"),
            "returnURL": string("cmi5 only"),
            "entitlementKey": obj(
                {"courseStructure": string(), "alternate": string()},
                required=("courseStructure",),
                description="cmi5 only",
            ),
        },
        required=("url", "actor", "activity_id"),
    ),
    "Launch": obj(
        {
            "url": string("the content URL with the launch parameters"),
            "expires_in": integer(),
            "username": string(),
            "registration": string("cmi5 only"),
            "session_id": string("cmi5 only"),
        },
        required=("url", "expires_in", "username"),
    ),
    "Cmi5Fetch": {
        "oneOf": [
            obj(
                {"auth-token": string("the value after Basic in the AU's Authorization header")},
                required=("auth-token",),
            ),
            obj(
                {"error-code": string(enum=["1", "2", "3"]), "error-text": string()},
                required=("error-code", "error-text"),
            ),
        ]
    },
}

PARAMETERS: dict[str, Schema] = {
    "Tenant": {
        "name": "X-CXP-Tenant",
        "in": "header",
        "required": False,
        "description": "The tenant the request is for. Required with a Bearer token unless the host names the "
        "tenant (OPENXP_TENANT_DOMAIN); with Basic it is optional but must match the key's tenant.",
        "schema": string(pattern="^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$"),
    },
    "XapiVersion": {
        "name": "X-Experience-API-Version",
        "in": "header",
        "required": True,
        "description": "1.0.x or 2.0.x; the answer names the version it was served as",
        "schema": string(enum=["1.0.3", "2.0.0"]),
    },
}

SECURITY_SCHEMES: dict[str, Schema] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An OAuth access token (cxa_...) from /auth/oauth/token; on /api with X-CXP-Tenant",
    },
    "apiKey": {
        "type": "http",
        "scheme": "basic",
        "description": "An API key and its secret (openxp apikey create). Deprecated: answers carry Deprecation "
        "and a Link to the migration guide. On /xapi also a short-lived or content-launch credential.",
    },
    "clientBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "client_secret_basic at the OAuth endpoints (or send client_id/client_secret in the body)",
    },
}


def components() -> dict[str, Any]:
    return {
        "schemas": {**ERRORS, **OAUTH, **XAPI, **API},
        "parameters": PARAMETERS,
        "securitySchemes": SECURITY_SCHEMES,
    }
