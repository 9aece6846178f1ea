"""One engine per protocol for the whole session (per xdist worker); fault markers vary behaviour per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.engines import RunningEngine, run_fake_engine


def _shared(protocol: str) -> Iterator[RunningEngine]:
    # Four slots: a test that leaves a stalled stream behind does not block the next one.
    with run_fake_engine(protocol, slots=4, model="fake/model-7b") as engine:
        yield engine


@pytest.fixture(scope="session")
def llamacpp_engine() -> Iterator[RunningEngine]:
    yield from _shared("llamacpp")


@pytest.fixture(scope="session")
def openai_engine() -> Iterator[RunningEngine]:
    yield from _shared("openai")


@pytest.fixture(scope="session")
def tgi_engine() -> Iterator[RunningEngine]:
    yield from _shared("tgi")


@pytest.fixture
def llamacpp(llamacpp_engine: RunningEngine) -> RunningEngine:
    llamacpp_engine.reset()
    return llamacpp_engine


@pytest.fixture
def openai(openai_engine: RunningEngine) -> RunningEngine:
    openai_engine.reset()
    return openai_engine


@pytest.fixture
def tgi(tgi_engine: RunningEngine) -> RunningEngine:
    tgi_engine.reset()
    return tgi_engine
