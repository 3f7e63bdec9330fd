"""Structured logs, Prometheus metrics and health/readiness endpoints."""
