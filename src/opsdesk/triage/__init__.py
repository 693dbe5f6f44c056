"""Triage and routing: classify every ticket, route it to a group, assign it to an agent, and hand
off to a person when the model is unsure."""
