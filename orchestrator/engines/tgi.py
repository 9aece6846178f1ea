"""Hugging Face text-generation-inference: `POST /generate_stream`, `/health`, `/info`."""

from __future__ import annotations

from typing import Any

from orchestrator.engines.adapter import Call, FrameReader, HttpAdapter, ProtocolError, error_text, optional_int
from orchestrator.engines.base import EngineEvent, EngineRequest, Finished, Token

# TGI's finish reasons: eos_token and stop_sequence end the text, length cuts it.
_LENGTH = "length"


class TgiAdapter(HttpAdapter):
    engine = "tgi"

    def generation(self, request: EngineRequest) -> Call:
        # details: the final frame then carries finish_reason and token counts.
        parameters: dict[str, Any] = {"max_new_tokens": request.max_tokens, "details": True}
        if request.seed is not None:
            parameters["seed"] = request.seed
        if request.temperature:
            # TGI refuses temperature 0; greedy decoding is its default without do_sample.
            parameters.update(temperature=request.temperature, do_sample=True)
        return Call("/generate_stream", {"inputs": request.prompt, "parameters": parameters})

    def reader(self, request: EngineRequest) -> FrameReader:
        return GenerateReader()

    async def engine_version(self, engine_url: str) -> str:
        info = await self.probe_json(engine_url, "/info")
        version = info.get("version") if isinstance(info, dict) else None
        return version[:64] if isinstance(version, str) else ""


class GenerateReader(FrameReader):
    """`{"token": {"text", "special"}, "generated_text": null}`; the last frame has generated_text and details."""

    def on_frame(self, frame: dict[str, Any]) -> tuple[EngineEvent, ...]:
        if "error" in frame:
            raise ProtocolError(f"the engine reported an error: {error_text(frame)}")
        token = frame.get("token")
        text = token.get("text") if isinstance(token, dict) and not token.get("special") else None
        tokens: tuple[EngineEvent, ...] = (Token(text),) if text and isinstance(text, str) else ()
        if frame.get("generated_text") is None:
            return tokens
        self.finished = True
        return (*tokens, final_stats(frame.get("details")))


def final_stats(details: Any) -> Finished:
    details = details if isinstance(details, dict) else {}
    return Finished(
        finish_reason="length" if details.get("finish_reason") == _LENGTH else "stop",
        tokens_out=optional_int(details.get("generated_tokens")),
        tokens_in=optional_int(details.get("input_length")),
    )
