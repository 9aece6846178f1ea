"""Lines and UTF-8 characters cut between network reads reach the caller whole."""

from __future__ import annotations

import pytest

from orchestrator.engines.base import Finished
from tests.engines_adapters.wire import Body, collect, generation, mock_generation

PROTOCOLS = ["llamacpp", "openai", "tgi"]
TEXTS = [" café", " 日本", " 🙂", " naïve"]


async def test_it_joins_a_character_cut_between_two_reads(engine_wire):
    mock_generation(
        engine_wire,
        "llamacpp",
        Body([b'data: {"content":"caf\xc3', b'\xa9"}\n\n', b'data: {"content":"","stop":true}\n\n']),
    )

    outcome = await collect("llamacpp")

    assert outcome.tokens == ["café"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_it_relays_the_same_tokens_however_the_body_is_cut(engine_wire, protocol):
    data = generation(protocol, TEXTS)

    for cut in range(1, len(data)):
        mock_generation(engine_wire, protocol, Body([data[:cut], data[cut:]]))
        outcome = await collect(protocol)

        assert outcome.error is None, f"cut at byte {cut}: {outcome.error}"
        assert outcome.tokens == TEXTS, f"cut at byte {cut}"
        assert isinstance(outcome.finished, Finished)


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_it_relays_a_body_sent_byte_by_byte(engine_wire, protocol):
    data = generation(protocol, TEXTS)
    mock_generation(engine_wire, protocol, Body([bytes([b]) for b in data]))

    outcome = await collect(protocol)

    assert outcome.tokens == TEXTS
    assert isinstance(outcome.finished, Finished)
