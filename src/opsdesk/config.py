"""Settings: one object built from ``OPSDESK_*`` environment variables.

Built by ``create_app()`` or the CLI, never at import time. Team policy (SLA targets, routing,
hours) lives in the database, not here.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET = "opsdesk-development-secret-change-me"  # noqa: S105 - refused in production


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OPSDESK_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("./data")
    database_url: str | None = None
    secret_key: str = DEFAULT_SECRET
    # Secret keys used before the current one (comma-separated): stored secrets encrypted under
    # them stay readable until `opsdesk channels reencrypt-secrets` moves them to the current key.
    previous_secret_keys: str = ""
    broker_url: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    attachment_max_bytes: int = 25 * 1024 * 1024
    login_attempts_per_minute: int = 10
    session_max_age_seconds: int = 14 * 24 * 3600
    run_jobs_in_process: bool = True

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "none"
    support_address: str = "support@example.com"
    support_name: str = "Support"
    inbound_smtp_host: str = "127.0.0.1"
    inbound_smtp_port: int | None = None  # `opsdesk serve --smtp-port`; off by default
    # Whole domains the SMTP receiver takes mail for (comma-separated), besides the support
    # address and every brand's address (with +tags).
    inbound_domains: str = ""
    inbound_email_max_bytes: int = 30 * 1024 * 1024
    email_throttle_count: int = 20
    email_throttle_window_seconds: int = 300
    slack_signing_secret: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    support_form_per_ten_minutes: int = 5
    chat_messages_per_minute: int = 30  # per visitor email
    chat_starts_per_ten_minutes: int = 10  # new chat conversations per client address

    stripe_webhook_secret: str | None = None
    stripe_api_key: str | None = None
    stripe_api_base: str | None = None

    extra: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> Settings:
        if self.environment == "production" and self.secret_key == DEFAULT_SECRET:
            raise ValueError("OPSDESK_SECRET_KEY must be set in production")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'opsdesk.db').resolve()}"

    @property
    def attachments_dir(self) -> Path:
        return self.data_dir / "attachments"

    def ensure_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.attachments_dir.mkdir(parents=True, exist_ok=True)


def new_secret() -> str:
    return secrets.token_urlsafe(32)
