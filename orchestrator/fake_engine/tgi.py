"""Hugging Face text-generation-inference: /health, /info, /generate, /generate_stream."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from orchestrator.fake_engine.config import FaultSyntaxError
from orchestrator.fake_engine.engine import FakeEngine, Plan, Run
from orchestrator.fake_engine.streaming import Reply, as_int, generate, json_response, read_json
from orchestrator.fake_engine.text import piece_id

_ERROR_TYPES = {400: "validation", 422: "validation", 424: "generation", 429: "overloaded", 503: "overloaded"}

# TGI calls a stop on the end-of-sequence token "eos_token".
_FINISH_REASONS = {"length": "length", "stop": "eos_token"}

# The beginning-of-sequence token, sent first and marked special: adapters must skip it.
BOS = {"id": 1, "text": "<s>", "logprob": 0.0, "special": True}


def error(status: int, message: str) -> web.Response:
    return json_response({"error": message, "error_type": _ERROR_TYPES.get(status, "generation")}, status=status)


def loading_error() -> web.Response:
    return error(503, "the model is still loading")


def routes(engine: FakeEngine) -> list[web.RouteDef]:
    async def health(request: web.Request) -> web.Response:
        return web.Response()

    async def info(request: web.Request) -> web.Response:
        return json_response(_info(engine))

    async def generate_stream(request: web.Request) -> web.StreamResponse:
        return await _generate(request, engine, stream=True)

    async def generate_once(request: web.Request) -> web.StreamResponse:
        return await _generate(request, engine, stream=None)

    return [
        web.get("/health", health),
        web.get("/info", info),
        web.post("/generate", generate_once),
        web.post("/generate_stream", generate_stream),
        web.post("/", generate_once),
    ]


async def _generate(request: web.Request, engine: FakeEngine, *, stream: bool | None) -> web.StreamResponse:
    """`stream=None`: the body decides (TGI's `/` route takes `"stream": true`)."""
    body = await read_json(request)
    if body is None or not isinstance(body.get("inputs"), str):
        return error(422, "the request body must be a JSON object with a string 'inputs'")
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, dict):
        return error(422, "'parameters' must be an object")
    streaming = bool(body.get("stream")) if stream is None else stream
    max_new_tokens, seed = as_int(parameters.get("max_new_tokens")), as_int(parameters.get("seed"))
    try:
        plan = engine.plan(body["inputs"], max_new_tokens, seed, streaming)
    except FaultSyntaxError as exc:
        return error(422, str(exc))
    return await generate(request, engine, plan, GenerateReply(plan, bool(parameters.get("details"))), error)


class GenerateReply(Reply):
    def __init__(self, plan: Plan, details: bool) -> None:
        self.plan = plan
        self.details = details

    def opening(self, run: Run) -> list[Any]:
        return [self._frame(0, BOS)]

    def token(self, run: Run, index: int, piece: str) -> Any | None:
        if index == len(self.plan.pieces) - 1:
            return None  # the last token travels in the terminal frame, with generated_text
        return self._frame(index + 1, _token(index, piece))

    def closing(self, run: Run) -> list[Any]:
        plan = self.plan
        last = len(plan.pieces) - 1
        frame = self._frame(last + 1, _token(last, plan.pieces[last])) if plan.pieces else self._frame(0, BOS)
        frame["generated_text"] = plan.text
        frame["details"] = {
            "finish_reason": _FINISH_REASONS[plan.finish],
            "generated_tokens": len(plan.pieces),
            "seed": plan.seed,
            "input_length": plan.prompt_tokens,
        }
        return [frame]

    def body(self, run: Run) -> Any:
        plan = self.plan
        answer: dict[str, Any] = {"generated_text": plan.text}
        if self.details:
            answer["details"] = {
                "finish_reason": _FINISH_REASONS[plan.finish],
                "generated_tokens": len(plan.pieces),
                "seed": plan.seed,
                "prefill": [],
                "tokens": [BOS, *(_token(i, p) for i, p in enumerate(plan.pieces))],
            }
        return answer

    def _frame(self, index: int, token: dict[str, Any]) -> dict[str, Any]:
        return {"index": index, "token": token, "top_tokens": None, "generated_text": None, "details": None}


def _token(index: int, piece: str) -> dict[str, Any]:
    # A made-up but stable log-probability, so consumers that keep logprobs see varied values.
    return {"id": piece_id(piece), "text": piece, "logprob": -round(0.1 + (index % 7) * 0.15, 4), "special": False}


def _info(engine: FakeEngine) -> dict[str, Any]:
    config = engine.config
    return {
        "model_id": config.model,
        "model_sha": None,
        "model_pipeline_tag": "text-generation",
        "max_concurrent_requests": config.slots,
        "max_best_of": 2,
        "max_stop_sequences": 4,
        "max_input_tokens": config.ctx_size - 1,
        "max_total_tokens": config.ctx_size,
        "validation_workers": 2,
        "max_client_batch_size": 4,
        "router": "text-generation-router",
        "version": config.version,
        "sha": None,
        "docker_label": None,
    }
