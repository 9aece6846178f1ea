"""Models of Artifacts."""
