"""Budgets and rate limits of sessions and API tokens (SPEC §4, §6)."""
