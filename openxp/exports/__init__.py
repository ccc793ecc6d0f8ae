"""Learning records leaving openxp: the statement export (NDJSON or CSV, streamed page by page),
used by ``GET /api/export/statements``, ``openxp statements export`` and the console."""
