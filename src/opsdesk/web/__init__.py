"""Shared web pieces: problem+json, request sessions, templates, static assets, layout."""
