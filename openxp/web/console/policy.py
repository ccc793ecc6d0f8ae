"""Who may do what in the tenant console: the one table every page and action is checked against.

A viewer reads; an admin also manages integrations, keys and learners; an owner also manages
the tenant's admins. A role the table does not know may do nothing (fail closed).
"""

from __future__ import annotations

READ = "console:read"
MANAGE = "console:manage"
MANAGE_ADMINS = "console:admins"

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "viewer": frozenset({READ}),
    "admin": frozenset({READ, MANAGE}),
    "owner": frozenset({READ, MANAGE, MANAGE_ADMINS}),
}
ROLE_LABELS = {"owner": "Owner", "admin": "Admin", "viewer": "Viewer"}


def allows(role: str, permission: str) -> bool:
    return permission in ROLE_PERMISSIONS.get(role, frozenset())
