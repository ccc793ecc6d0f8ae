"""Who is calling a resource (``/api``, ``/xapi``): credentials in, a Principal out.

- ``bearer``: OAuth access tokens (RFC 6750), bound to one tenant;
- ``basic``: RFC 7617 Basic with API keys (deprecated) and with the short-lived and
  launch credentials of ``launch`` (LRS-only, optionally confined to one actor);
- ``tenant``: which tenant a request names (``X-CXP-Tenant`` or the host);
- ``guard``: the one ``authenticate`` of every resource, with a ``Policy`` of the kinds it takes;
- ``confine``: what an actor-bound (short-lived or launch) credential may touch on the LRS;
- ``errors``: the refusals, rendered by each API in its own error shape.
"""

from openxp.auth.errors import AuthError
from openxp.auth.guard import authenticate
from openxp.auth.principal import Principal

__all__ = ["AuthError", "Principal", "authenticate"]
