"""Sessions tests run on a fixed clock and with known defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def session_defaults(settings: Any) -> None:
    settings.ORCHD_SESSION_TTL_MS = 600_000
    settings.ORCHD_SESSION_MAX_TURNS = 0
    settings.ORCHD_SESSION_TOKENS_BUDGET = None
    settings.ORCHD_SESSION_TIME_BUDGET_MS = None
    settings.ORCHD_SESSION_COST_BUDGET = None
