"""Admin of Pools."""
