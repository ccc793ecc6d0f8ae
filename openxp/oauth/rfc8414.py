"""RFC 8414, authorization server metadata (with RFC 9207's ``iss`` flag)."""

from __future__ import annotations

from openxp import scopes
from openxp.config import Settings
from openxp.oauth import rfc7636
from openxp.oauth.rfc6749 import client_auth, token_endpoint


def metadata(settings: Settings) -> dict[str, object]:
    base = settings.issuer
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/auth/oauth/authorize",
        "token_endpoint": f"{base}/auth/oauth/token",
        "revocation_endpoint": f"{base}/auth/oauth/revoke",
        "introspection_endpoint": f"{base}/auth/oauth/introspect",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": token_endpoint.GRANT_TYPES_SUPPORTED,
        "code_challenge_methods_supported": rfc7636.METHODS_SUPPORTED,
        "token_endpoint_auth_methods_supported": [*client_auth.AUTH_METHODS, "none"],
        "revocation_endpoint_auth_methods_supported": [*client_auth.AUTH_METHODS, "none"],
        "introspection_endpoint_auth_methods_supported": [*client_auth.AUTH_METHODS, "none"],
        "scopes_supported": list(scopes.SCOPES),
        "authorization_response_iss_parameter_supported": True,
        "service_documentation": f"{base}/docs",
    }
