"""Models of Sessions."""
