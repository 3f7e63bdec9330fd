"""Durable timers: due dates, escalations and reviews that survive restarts."""
