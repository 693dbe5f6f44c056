"""Billing operations, one concept per module: catalog, policy, refunds, plan changes,
cancellations, invoicing, dunning, disputes, reconciliation, webhooks, notices, the ticket panel.

Every function takes ``(session, actor, …)``, checks permission, validates, changes state, writes
the audit trail and publishes events; it flushes and never commits.
"""
