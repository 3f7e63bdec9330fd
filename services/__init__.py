"""Milepost's services: ingest, node engine, scoring and messaging, and the ``milepost`` CLI."""
