"""Admin of Model catalog."""
