"""Scenario files: the schema, loading with one-line errors, and assembly of live links and channels."""
