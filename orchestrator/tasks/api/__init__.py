"""HTTP API of the data plane."""
