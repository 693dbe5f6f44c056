"""Which envelope recipients the SMTP receiver takes mail for.

Pure. Mail is accepted for the support address, each brand's address (also with a ``+tag``, the
ticket reply addresses) and any address at a domain listed in ``OPSDESK_INBOUND_DOMAINS``;
anything else is refused at ``RCPT TO`` with 550, so the receiver never relays and never collects
mail that is not the team's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AcceptedRecipients:
    addresses: frozenset[str]
    domains: frozenset[str]

    @classmethod
    def of(cls, addresses: Iterable[str], domains: Iterable[str]) -> AcceptedRecipients:
        return cls(
            frozenset(address.strip().lower() for address in addresses if address.strip()),
            frozenset(domain.strip().lower().lstrip("@") for domain in domains if domain.strip()),
        )

    def refusal(self, address: str) -> str | None:
        """Why mail for ``address`` is refused, or None when it is accepted."""
        local, at, domain = address.strip().strip("<>").lower().rpartition("@")
        if not at or not local or not domain:
            return f"<{address}> is not an email address"
        if domain in self.domains:
            return None
        if f"{local.split('+', 1)[0]}@{domain}" in self.addresses:
            return None
        return f"<{address}> is not a support address here; this server does not relay"


def domains_setting(value: str) -> list[str]:
    return [part for part in value.split(",") if part.strip()]
