"""Billing operations: plans and prices, subscriptions, invoices, payments, refunds, disputes,
dunning, reconciliation, on opsdesk's own ledger or on Stripe."""
