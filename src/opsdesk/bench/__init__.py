"""``opsdesk bench …`` scenarios: each module registers one command that prints one JSON object."""
