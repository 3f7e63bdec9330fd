"""The pure core: per-account state and ``transition(state, input, *, now) -> Decision``."""
