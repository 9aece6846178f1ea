"""The live fixtures (`web`, `operator_token`) come from the `tests.support.live` plugin."""

from tests.support.live import Client, add_pool, task_body

__all__ = ["Client", "add_pool", "task_body"]
