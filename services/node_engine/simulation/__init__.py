"""Simulation: replay events through a growth-path version with no side effects, and report."""
