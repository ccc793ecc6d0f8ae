"""ClearXP's learner import, shared by ``POST|PUT /api/import/users`` and ``openxp users import``.

Rows arrive in chunks (``run.CHUNK`` rows); each chunk is validated, looked up with
batched queries and written in its own transaction, so memory stays flat however
many rows a CSV holds. Bad rows are reported and skipped; good rows are kept.
``verify`` validates and reports without writing.

A storage failure stops the import: chunks already committed stay written (the
failed chunk is rolled back as a whole), and ``errors.WriteFailed`` carries the
report so far, including ``written``, the number of rows stored.

A malformed CSV stops the import too (``errors.MalformedInput``, with the line it
stopped at): again the chunks committed before it stay written, and
``report.stop_message`` says exactly how many rows that is and from which lines.

Row numbers: an error's ``row`` is the user's 0-based position among the users sent
(the index in a JSON ``users`` array; the data row of a CSV, not counting the header).
CSV entries also carry ``line``, the file line on which the row starts (the header
is line 1; a quoted field with line breaks makes a row span several lines).

A repeated identifier is detected within a chunk (a warning; the last row wins).
Across chunks the later row updates the user (counted as existing), except under
``verify``, where nothing is written and both count as new.

The modules, one idea each: ``limits`` (the input limits), ``errors`` (what stops an
import or refuses a row), ``csv_rows`` and ``json_rows`` (reading the input),
``validation`` (a row becomes a learner), ``report`` (what the caller is told) and
``run`` (the chunked, streamed writing). Nothing here knows HTTP: ``openxp.api.users``
and ``openxp.cli.users`` translate the errors for their callers.
"""
