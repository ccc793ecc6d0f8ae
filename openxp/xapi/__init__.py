"""The xAPI Learning Record Store under /xapi (xAPI 1.0.3 and 2.0.0).

- ``endpoint``: the frame of every resource (``version``, the guard of ``openxp.auth``, scope);
- ``alternate``, ``params``, ``cors``, ``errors``: the alternate request syntax, query
  parameters, CORS, and the refusals with their xAPI body;
- ``validate``: statement rules of xAPI-Data.md;
- ``shape``: statement rows and output formats;
- ``statements``, ``documents``, ``about``: the resources, mounted by ``routes``.
"""
