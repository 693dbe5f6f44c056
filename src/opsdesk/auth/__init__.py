"""Staff users, roles and permissions, API tokens, sessions and the audit trail."""
