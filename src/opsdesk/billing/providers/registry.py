"""Which provider serves a customer, built from the settings the app or CLI was started with.

``configure`` is called by ``create_app()``'s billing router and by the CLI with their Settings;
until then the settings come from the environment (``OPSDESK_*``), read on first use, never at
import time.
"""

from __future__ import annotations

from opsdesk.billing.enums import ProviderName
from opsdesk.billing.errors import ProviderError
from opsdesk.billing.providers.base import BillingProvider
from opsdesk.billing.providers.local import LocalProvider
from opsdesk.billing.providers.stripe_api import StripeProvider
from opsdesk.config import Settings

_state: dict[str, Settings] = {}


def configure(settings: Settings) -> None:
    _state["settings"] = settings


def _settings() -> Settings:
    if "settings" not in _state:
        _state["settings"] = Settings()
    return _state["settings"]


def provider_named(name: str) -> BillingProvider:
    if name == ProviderName.LOCAL:
        return LocalProvider()
    if name == ProviderName.STRIPE:
        settings = _settings()
        if not settings.stripe_api_key:
            raise ProviderError("Stripe is not configured: set OPSDESK_STRIPE_API_KEY")
        return StripeProvider(settings.stripe_api_key, settings.stripe_api_base)
    raise ProviderError(f"unknown billing provider {name!r}")


def provider_for(customer_provider: str) -> BillingProvider:
    return provider_named(customer_provider)
