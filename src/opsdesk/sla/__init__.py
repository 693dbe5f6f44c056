"""SLA policies, business calendars, per-ticket targets (clocks) and breaches."""
