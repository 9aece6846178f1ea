"""The audit log: who did what to the fleet, when, from where, and how it went."""
