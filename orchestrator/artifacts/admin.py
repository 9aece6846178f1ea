"""Admin of Artifacts."""
