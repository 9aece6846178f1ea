"""Engine adapters: one small class per engine kind (SPEC §11).

adapter = adapter_for("vllm")          # a new object per task
async for event in adapter.stream(request): ...
await adapter.cancel()                 # from another task: closes the engine stream
"""

from __future__ import annotations

from orchestrator.engines.adapter import HttpAdapter
from orchestrator.engines.base import EngineAdapter
from orchestrator.engines.llamacpp import LlamaCppAdapter
from orchestrator.engines.openai import ENGINES as OPENAI_ENGINES
from orchestrator.engines.openai import OpenAIAdapter
from orchestrator.engines.tgi import TgiAdapter

ENGINES = ("llamacpp", *OPENAI_ENGINES, "tgi")


def adapter_for(engine: str) -> EngineAdapter:
    """A fresh adapter for one task: `cancel()` then closes only that task's stream.

    Raises KeyError for an engine no adapter speaks.
    """
    adapter: HttpAdapter
    if engine == "llamacpp":
        adapter = LlamaCppAdapter()
    elif engine in OPENAI_ENGINES:
        adapter = OpenAIAdapter(engine)
    elif engine == "tgi":
        adapter = TgiAdapter()
    else:
        raise KeyError(f"no adapter for engine {engine!r}")
    return adapter
