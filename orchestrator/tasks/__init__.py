"""Inference tasks: admission, the queue, dispatch, streaming and cancel (SPEC §3)."""
