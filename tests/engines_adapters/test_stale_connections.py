"""A kept-alive connection the engine closed as a request went out on it: sent once more, on another.

llama-server announces keep-alive but closes the connection after a streamed
answer, so its adapter keeps no connection; other engines keep theirs, and a
request that meets one the engine has just closed is sent again, once.
"""

from __future__ import annotations

import logging

import pytest

from tests.engines_adapters.wire import ENGINES, Body, collect, generation, mock_generation
from tests.support.web import free_port

pytestmark = pytest.mark.parametrize("protocol", list(ENGINES))


async def test_a_request_on_a_connection_the_engine_closed_is_sent_again(engine_wire, protocol, caplog):
    route = mock_generation(engine_wire, protocol, Body([generation(protocol, ["a", "b"])])).once_per_connection()
    caplog.set_level(logging.INFO, logger="orchestrator.engines.adapter")

    outcomes = [await collect(protocol, task_id=f"task-{turn}") for turn in (1, 2, 3)]

    assert [outcome.error for outcome in outcomes] == [None, None, None]
    assert [outcome.tokens for outcome in outcomes] == [["a", "b"]] * 3
    stale = [record for record in caplog.records if record.getMessage() == "engine.connection_stale"]
    connections = route.connections
    if protocol != "llamacpp":  # llama-server's adapter keeps no connection
        # The second went out on the first's connection, was dropped, and went again on a new
        # one; the third, on a new one too: none is kept for this engine any more.
        assert len(route.calls) == 4
        assert connections[1] is connections[0]
        assert connections[2] not in connections[:2]
        assert connections[3] not in connections[:3]
        assert [record.__dict__["task_id"] for record in stale] == ["task-2"]
    else:
        # Each request on a connection of its own: nothing was dropped.
        assert len(route.calls) == 3
        assert len({id(connection) for connection in connections}) == 3
        assert stale == []


async def test_a_request_dropped_again_on_another_connection_fails_after_one_more_try(engine_wire, protocol):
    route = mock_generation(engine_wire, protocol, Body([generation(protocol, ["a"])]))
    assert (await collect(protocol)).error is None  # its connection is kept, where the engine keeps them
    route.reset()  # from now on the engine drops every request

    outcome = await collect(protocol)

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("WORKER_RESET", True)
    # Kept connection: dropped, then once more on a new one, dropped too. llama.cpp: a new one, dropped.
    assert len(route.calls) == (2 if protocol == "llamacpp" else 3)


async def test_a_request_dropped_on_a_new_connection_is_not_sent_again(engine_wire, protocol, caplog):
    # The engine got the request on a connection made for it and dropped it: its own doing.
    route = mock_generation(engine_wire, protocol, Body([])).reset()
    caplog.set_level(logging.INFO, logger="orchestrator.engines.adapter")

    outcome = await collect(protocol)

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("WORKER_RESET", True)
    assert len(route.calls) == 1
    assert not [record for record in caplog.records if record.getMessage() == "engine.connection_stale"]


async def test_a_refused_connection_is_not_tried_again(protocol, caplog):
    caplog.set_level(logging.INFO, logger="orchestrator.engines.adapter")

    outcome = await collect(protocol, engine_url=f"http://127.0.0.1:{free_port()}")

    assert outcome.error is not None
    assert (outcome.error.code, outcome.error.before_first_token) == ("WORKER_RESET", True)
    assert not [record for record in caplog.records if record.getMessage() == "engine.connection_stale"]
