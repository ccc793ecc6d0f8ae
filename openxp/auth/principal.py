"""The authenticated caller of a resource request."""

from __future__ import annotations

from dataclasses import dataclass, field

from openxp import scopes


@dataclass(frozen=True)
class Principal:
    kind: str  # "oauth" | "apikey" | "launch" | "shortlived"
    tenant_id: int
    tenant: str
    scopes: frozenset[str]
    client_id: str | None = None
    account_id: int | None = None
    key: str | None = None
    # Launch and short-lived credentials may act only as this xAPI Agent.
    actor: dict[str, object] | None = None
    restrictions: dict[str, str] = field(default_factory=dict)

    @property
    def restricted(self) -> bool:
        """A launch or short-lived credential: LRS-only, never the ClearXP API."""
        return self.kind in ("launch", "shortlived")

    def may(self, scope: str) -> bool:
        return scopes.permits(self.scopes, scope)
