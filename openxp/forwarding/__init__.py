"""Forwarding accepted statements to another LRS or a webhook (issue 15).

- ``destinations``: which URLs may be called (SSRF: public addresses only, unless allowed);
- ``sealing``: URLs, credentials and signing secrets sealed at rest (Fernet);
- ``delivery``: one batch to one target (xAPI POST /statements, or a signed webhook);
- ``deliverer``: the background task of each worker that leases, delivers and records.

The outbox itself (rows written with the statements, the lease) is ``openxp.store.forwarding``.
"""
