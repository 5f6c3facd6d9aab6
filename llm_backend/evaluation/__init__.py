"""Metrics and the views of them the pages and CLI share."""
