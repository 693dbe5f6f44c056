"""Triggers, time-based automations, macros, the escalation matrix, and the job admin pages."""
