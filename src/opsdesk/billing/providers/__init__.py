"""Payment providers behind one protocol: ``local`` (opsdesk is the ledger) and ``stripe``."""

from opsdesk.billing.providers.base import (
    BillingProvider,
    ChargeOutcome,
    ProviderRefund,
    SubmittedEvidence,
)
from opsdesk.billing.providers.registry import configure, provider_for, provider_named

__all__ = [
    "BillingProvider",
    "ChargeOutcome",
    "ProviderRefund",
    "SubmittedEvidence",
    "configure",
    "provider_for",
    "provider_named",
]
