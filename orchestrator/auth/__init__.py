"""API tokens, roles and request authentication (SPEC §2)."""
