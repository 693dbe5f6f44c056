"""opsdesk: one open-source product for customer operations."""

__version__ = "0.1.0"
