"""Test support: databases, factories and servers used across the suite."""
