"""Policies, pure: consent and unsubscribe links, contact-pressure budgets, quiet hours."""
