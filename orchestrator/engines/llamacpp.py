"""llama.cpp's llama-server: `POST /completion` streamed, `POST /embedding`, `/health`, `/props`."""

from __future__ import annotations

from typing import Any

from orchestrator.engines.adapter import (
    Call,
    FrameReader,
    HttpAdapter,
    ProtocolError,
    error_text,
    float_list,
    optional_int,
)
from orchestrator.engines.base import EngineEvent, EngineRequest, Finished, Token, Vectors


class LlamaCppAdapter(HttpAdapter):
    engine = "llamacpp"
    # llama-server answers `Keep-Alive: timeout=5, max=100` but closes the connection after a
    # streamed answer: the next task sent on it failed (half of 320 short tasks, 8 at a time).
    keeps_connections = False

    def generation(self, request: EngineRequest) -> Call:
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "n_predict": request.max_tokens,
            "stream": True,
            # Reuse the KV cache of a slot that saw the same prefix (a session's earlier turns).
            "cache_prompt": True,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return Call("/completion", body)

    def reader(self, request: EngineRequest) -> FrameReader:
        return CompletionReader()

    def embedding(self, request: EngineRequest) -> Call:
        # `content` may be a list: one answer per input, in one request.
        return Call("/embedding", {"content": list(request.inputs)})

    def vectors(self, payload: Any) -> Vectors:
        """`[{"index", "embedding": [[...]]}]` (current), or `{"embedding": [...]}` (older servers)."""
        items = payload if isinstance(payload, list) else [payload]
        if not all(isinstance(item, dict) for item in items):
            raise ProtocolError("the embedding answer is not a list of objects")
        ordered = sorted(items, key=lambda item: optional_int(item.get("index")) or 0)
        return Vectors(embeddings=[_pooled(item.get("embedding")) for item in ordered])

    async def engine_version(self, engine_url: str) -> str:
        props = await self.probe_json(engine_url, "/props")
        version = props.get("build_info") if isinstance(props, dict) else None
        return version[:64] if isinstance(version, str) else ""


class CompletionReader(FrameReader):
    """`{"content": "...", "stop": false}` per token; the `stop: true` frame carries the totals."""

    def on_frame(self, frame: dict[str, Any]) -> tuple[EngineEvent, ...]:
        if "error" in frame:
            raise ProtocolError(f"the engine reported an error: {error_text(frame)}")
        content = frame.get("content")
        tokens: tuple[EngineEvent, ...] = (Token(content),) if content and isinstance(content, str) else ()
        if frame.get("stop") is not True:
            return tokens
        self.finished = True
        return (*tokens, final_stats(frame))


def final_stats(frame: dict[str, Any]) -> Finished:
    timings = frame.get("timings")
    timings = timings if isinstance(timings, dict) else {}
    # stop_type is "limit" at n_predict or a full context; older servers said stopped_limit.
    at_limit = frame.get("stop_type") == "limit" or frame.get("stopped_limit") is True
    return Finished(
        finish_reason="length" if at_limit else "stop",
        tokens_out=optional_int(frame.get("tokens_predicted"), timings.get("predicted_n")),
        tokens_in=optional_int(frame.get("tokens_evaluated"), timings.get("prompt_n")),
        decode_ms=optional_int(timings.get("predicted_ms")),
    )


def _pooled(embedding: Any) -> list[float]:
    """A pooled embedding is one vector, nested once by current servers."""
    if isinstance(embedding, list) and len(embedding) == 1 and isinstance(embedding[0], list):
        return float_list(embedding[0])
    if isinstance(embedding, list) and embedding and isinstance(embedding[0], list):
        raise ProtocolError("the engine returned one vector per token: start it with a pooling type")
    return float_list(embedding)
