"""Which tenant a request names: ``X-CXP-Tenant``, or (older style) the first
label of the host under ``OPENXP_TENANT_DOMAIN``. A credential's own tenant
always wins: naming another one is refused, never followed."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from openxp import audit
from openxp.auth.errors import TenantInvalid, TenantMismatch, TenantRequired
from openxp.config import Settings
from openxp.store.tenants import TENANT_NAME

HEADER = "x-cxp-tenant"


def named_tenant(conn: HTTPConnection, settings: Settings) -> str | None:
    values = conn.headers.getlist(HEADER)
    if len(values) > 1:
        raise TenantInvalid("send X-CXP-Tenant once")
    if values:
        name = values[0]
        if not TENANT_NAME.fullmatch(name):
            raise TenantInvalid("X-CXP-Tenant is not a valid tenant name")
        return name
    if settings.tenant_domain:
        host = conn.headers.get("host", "").split(":", 1)[0].lower().rstrip(".")
        suffix = "." + settings.tenant_domain
        if host.endswith(suffix):
            label = host[: -len(suffix)]
            if TENANT_NAME.fullmatch(label):
                return label
    return None


def check(conn: HTTPConnection, settings: Settings, credential_tenant: str, *, required: bool = True) -> None:
    named = named_tenant(conn, settings)
    if named is None:
        if required:
            raise TenantRequired()
        return
    if named != credential_tenant:
        # I-01: a credential reaching for another tenant is a security event, not just a 403.
        audit.event("tenant_mismatch", severity="warning", tenant=credential_tenant, named=named)
        raise TenantMismatch()
