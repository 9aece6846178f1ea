"""Admin of GPU nodes."""
