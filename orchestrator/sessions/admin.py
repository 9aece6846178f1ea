"""Admin of Sessions."""
