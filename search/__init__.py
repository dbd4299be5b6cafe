"""Searching: settings, the search service, the CLI."""
