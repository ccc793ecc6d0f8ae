"""The import's input limits (docs/security.md, "Input limits on /api").

MAX_JSON_ROWS rows per JSON request and MAX_CSV_COLUMNS columns per CSV (413, nothing
written), MAX_ATTRIBUTES per learner after merging and MAX_TENANT_ATTRIBUTES distinct
names per tenant (that row's error), and the name and value lengths below.
"""

from __future__ import annotations

MAX_ATTRIBUTE_NAME = 200
MAX_ATTRIBUTE_VALUE = 2000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_IDENTIFIER = 320  # the learners.identifier column
MAX_NAME = 500
MAX_JSON_ROWS = 10_000
MAX_CSV_COLUMNS = 200
MAX_ATTRIBUTES = 100
MAX_TENANT_ATTRIBUTES = 1000
# A CSV record longer than this (an unclosed quote, or no line breaks) ends the import.
MAX_CSV_RECORD = 1024 * 1024
