"""Outreach simulation: what the playbooks would send for a replay's triggers."""
