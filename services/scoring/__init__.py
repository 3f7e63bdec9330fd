"""Scoring: account metrics, health, churn warning and tier diagnostics."""
