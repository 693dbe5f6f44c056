"""Insights: one metric layer, dashboards, reports, trends and experiments."""
