"""The database handle, and the two ways to use it.

``read()`` gives a connection for look-ups; ``write()`` a transaction. Both yield a
``Connection`` (``protocol``); the one method repositories use is ``await conn.execute(...)``,
and the hot paths use plain SQL (``fetch_one``, ``fetch_all``, ``run``, ``run_many``).

The package, one idea a module:

- ``protocol``: what repositories may use of a connection;
- ``database``: ``Database``, choosing the backend and answering storage trouble;
- ``sqlite``, ``sqlite_driver``: SQLite inline on the event loop, plain SQL and Core
  over one driver connection;
- ``group_commit``: SQLite write transactions committed together (the riskiest code);
- ``checkpoint``: SQLite's checkpoint on a thread of its own;
- ``sqlite_bounded``: SQLite reads stopped at a deadline;
- ``postgres``: PostgreSQL through SQLAlchemy's asyncio engine and asyncpg;
- ``unstorable``: text the database cannot store, refused before any statement;
- ``trouble``: which errors mean the database cannot serve (503), and the start-up probe;
- ``urls``: the operator's database URL.
"""

from openxp.store.db.database import Database
from openxp.store.db.protocol import Connection, Lookup, now
from openxp.store.db.trouble import probe_writable, storage_trouble
from openxp.store.db.unstorable import refuse_unstorable
from openxp.store.db.urls import async_url, null_pool_engine, sqlite_path

__all__ = [
    "Connection",
    "Database",
    "Lookup",
    "async_url",
    "now",
    "null_pool_engine",
    "probe_writable",
    "refuse_unstorable",
    "sqlite_path",
    "storage_trouble",
]
