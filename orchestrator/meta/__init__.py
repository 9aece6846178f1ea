"""Meta endpoints: capabilities, version, health, readiness, metrics."""
