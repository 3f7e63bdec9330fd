"""Milepost's toolkit shared by every service: contracts, bus, database, settings, observability."""

__version__ = "0.1.0"
