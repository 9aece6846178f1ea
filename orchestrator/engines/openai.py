"""OpenAI-compatible servers (vLLM, Triton's OpenAI frontend, OpenAI itself): `/v1/completions`, `/v1/embeddings`."""

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

ENGINES = ("vllm", "openai", "triton")


class OpenAIAdapter(HttpAdapter):
    engine = "openai"

    def generation(self, request: EngineRequest) -> Call:
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "max_tokens": request.max_tokens,
            "stream": True,
            # The token counts arrive in a last chunk, just before [DONE].
            "stream_options": {"include_usage": True},
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return Call("/v1/completions", _with_model(body, request))

    def reader(self, request: EngineRequest) -> FrameReader:
        return CompletionReader()

    def embedding(self, request: EngineRequest) -> Call:
        return Call("/v1/embeddings", _with_model({"input": list(request.inputs)}, request))

    def vectors(self, payload: Any) -> Vectors:
        data = payload.get("data") if isinstance(payload, dict) else None
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise ProtocolError("the embedding answer has no list of data objects")
        ordered = sorted(data, key=lambda item: optional_int(item.get("index")) or 0)
        usage = payload.get("usage")
        tokens_in = optional_int(usage.get("prompt_tokens")) if isinstance(usage, dict) else None
        return Vectors(embeddings=[float_list(item.get("embedding")) for item in ordered], tokens_in=tokens_in)

    async def health(self, engine_url: str) -> bool:
        # vLLM has /health; other OpenAI-compatible servers may only list their models.
        response = await self.probe(engine_url, "/health")
        if response is not None and response.status_code in (404, 405):
            response = await self.probe(engine_url, "/v1/models")
        return response is not None and response.status_code == 200

    async def engine_version(self, engine_url: str) -> str:
        answer = await self.probe_json(engine_url, "/version")  # vLLM
        version = answer.get("version") if isinstance(answer, dict) else None
        return version[:64] if isinstance(version, str) else ""


class CompletionReader(FrameReader):
    """`choices[0].text` deltas, a chunk with `finish_reason`, one with `usage`, then `[DONE]`."""

    def __init__(self) -> None:
        self.finish_reason: str | None = None
        self.usage: dict[str, Any] = {}

    def on_frame(self, frame: dict[str, Any]) -> tuple[EngineEvent, ...]:
        if "error" in frame or frame.get("object") == "error":
            raise ProtocolError(f"the engine reported an error: {error_text(frame)}")
        usage = frame.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        choices = frame.get("choices")
        if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
            return ()
        choice = choices[0]
        reason = choice.get("finish_reason")
        if reason is not None:
            self.finish_reason = str(reason)
        text = choice.get("text")
        return (Token(text),) if text and isinstance(text, str) else ()

    def on_end(self) -> Finished | None:
        """At `[DONE]` (or a close right after the finish_reason chunk, when usage is not sent)."""
        if self.finish_reason is None:
            return None
        if self.finish_reason == "abort":
            # vLLM aborted the request (preempted, engine error): the text is incomplete.
            raise ProtocolError("the engine aborted the generation")
        return Finished(
            finish_reason="length" if self.finish_reason == "length" else "stop",
            tokens_out=optional_int(self.usage.get("completion_tokens")),
            tokens_in=optional_int(self.usage.get("prompt_tokens")),
        )


def _with_model(body: dict[str, Any], request: EngineRequest) -> dict[str, Any]:
    # Without a model, a single-model server (vLLM, Triton) serves the one it has.
    if request.model_ref:
        body["model"] = request.model_ref
    return body
