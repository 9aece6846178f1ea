"""GPU nodes."""
