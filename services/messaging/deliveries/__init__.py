"""Deliveries: queued messages, their attempts, and the dispatcher that sends them."""
