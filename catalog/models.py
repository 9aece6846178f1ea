"""Models of Model catalog."""
