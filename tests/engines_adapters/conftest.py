"""One fake engine per protocol for the session (per xdist worker); prompt markers vary behaviour per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from orchestrator.engines.http import aclose_clients
from tests.engines import RunningEngine, start_fake_engine
from tests.engines_adapters import wire
from tests.engines_adapters.wire import WireEngine

MODEL = "fake/model-7b"


@pytest.fixture(scope="session")
def engines() -> Iterator[dict[str, RunningEngine]]:
    # Started lazily by the first integration test; four slots, so that a test
    # leaving a stalled stream behind does not block the next one.
    started: dict[str, RunningEngine] = {}
    yield started
    for engine in started.values():
        engine.stop()


@pytest.fixture(params=["llamacpp", "openai", "tgi"])
def engine(request: pytest.FixtureRequest, engines: dict[str, RunningEngine]) -> RunningEngine:
    """A fake engine of each protocol in turn, idle, with its counters reset."""
    protocol: str = request.param
    if protocol not in engines:
        engines[protocol] = start_fake_engine(protocol, slots=4, model=MODEL)
    running = engines[protocol]
    running.wait_for_stats(active=0, queued=0)
    running.reset()
    return running


@pytest.fixture
async def engine_wire() -> AsyncIterator[WireEngine]:
    """A local engine server in the test's event loop (generations and embeddings go through aiohttp)."""
    engine = WireEngine()
    async with engine.running():
        wire._current.append(engine)
        try:
            yield engine
        finally:
            wire._current.remove(engine)


@pytest.fixture(autouse=True)
async def _close_engine_clients() -> AsyncIterator[None]:
    """Close the test loop's shared engine clients before the loop goes (aiohttp warns of unclosed ones)."""
    yield
    await aclose_clients()
