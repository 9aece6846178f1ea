"""The operator console: the admin site, its dashboard, confirmed actions and the operator groups."""
