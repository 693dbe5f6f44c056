"""Calls to Slack's Web API through slack-sdk, at the API base of the settings (tests point it at
a local server). Failures raise, so the job runner retries."""

from __future__ import annotations

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from opsdesk.config import Settings

SLACK_TIMEOUT_SECONDS = 10


def _client(settings: Settings, token: str) -> WebClient:
    base = settings.slack_api_url if settings.slack_api_url.endswith("/") else settings.slack_api_url + "/"
    return WebClient(token=token, base_url=base, timeout=SLACK_TIMEOUT_SECONDS)


def post_in_thread(settings: Settings, token: str, *, channel: str, thread_ts: str, text: str) -> str:
    response = _client(settings, token).chat_postMessage(channel=channel, thread_ts=thread_ts, text=text)
    return str(response.get("ts") or "")


def user_identity(settings: Settings, token: str, user_id: str) -> tuple[str, str | None]:
    """(email, name) of a Slack user; a stable placeholder address when Slack will not say."""
    fallback = f"{user_id.lower()}@slack-users.invalid"
    try:
        response = _client(settings, token).users_info(user=user_id)
    except (SlackApiError, OSError):
        return fallback, None
    user = response.get("user") or {}
    profile = user.get("profile") or {}
    email = str(profile.get("email") or "") or fallback
    name = str(profile.get("real_name") or user.get("real_name") or user.get("name") or "") or None
    return email, name
