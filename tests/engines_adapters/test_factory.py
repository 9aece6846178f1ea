"""adapter_for: a new adapter per task, for every engine kind of the SPEC."""

from __future__ import annotations

import pytest

from orchestrator.engines import ENGINES, adapter_for
from orchestrator.engines.llamacpp import LlamaCppAdapter
from orchestrator.engines.openai import OpenAIAdapter
from orchestrator.engines.tgi import TgiAdapter


@pytest.mark.parametrize(
    ("engine", "kind"),
    [
        ("llamacpp", LlamaCppAdapter),
        ("vllm", OpenAIAdapter),
        ("openai", OpenAIAdapter),
        ("triton", OpenAIAdapter),
        ("tgi", TgiAdapter),
    ],
)
def test_it_builds_the_adapter_of_each_engine(engine, kind):
    adapter = adapter_for(engine)

    assert isinstance(adapter, kind)
    assert adapter.engine == engine


def test_it_builds_a_new_adapter_per_task():
    assert adapter_for("llamacpp") is not adapter_for("llamacpp")


def test_it_knows_every_engine_of_the_spec():
    assert set(ENGINES) == {"llamacpp", "vllm", "openai", "triton", "tgi"}


def test_it_refuses_an_unknown_engine():
    with pytest.raises(KeyError, match="sglang"):
        adapter_for("sglang")
