"""From an account's events to its findings, purely: the facts CRM and group calls state,
the snapshot health and signals read, and :func:`evaluate`, the one per-account step."""
