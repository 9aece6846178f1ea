"""Helpers shared by the test suites: real engine binaries, tiny models, running servers."""
