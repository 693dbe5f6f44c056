"""Channels: email in and out, the web form, the chat widget, Slack and outbound webhooks.

Every channel stores what arrives from outside first (``raw_inbound``), then processes it
idempotently into :func:`opsdesk.tickets.service.receive`, so nothing is lost and nothing lands twice.
"""
