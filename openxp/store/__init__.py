"""Persistence: the schema, its migrations, and narrow repositories over it.

Every other package depends inward on this one; this package imports none of them.
"""

from openxp.store.db import Database, now

__all__ = ["Database", "now"]
