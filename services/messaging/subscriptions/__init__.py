"""Subscriptions: marketing systems receive matching triggers as signed webhooks."""
