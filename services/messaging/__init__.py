"""Messaging: role-targeted outreach from triggers."""
