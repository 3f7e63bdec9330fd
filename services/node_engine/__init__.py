"""Node engine: growth paths and per-account state, from events to triggers."""
