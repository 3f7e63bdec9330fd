"""Accounts on growth paths: their state, history and user memberships."""
