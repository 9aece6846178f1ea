"""Tests of the model catalog (SPEC §7)."""
