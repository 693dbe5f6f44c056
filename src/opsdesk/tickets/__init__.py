"""Tickets, messages, people, accounts, groups, views, tags and custom fields."""
