"""Cross-cutting API plumbing: the error envelope, parsing, pagination, ids."""
