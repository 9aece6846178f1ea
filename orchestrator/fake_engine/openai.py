"""The OpenAI-compatible frontend (vLLM, Triton's frontend): /v1/completions, /v1/chat/completions and friends."""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web

from orchestrator.fake_engine.config import FaultSyntaxError
from orchestrator.fake_engine.engine import FakeEngine, Plan, Run
from orchestrator.fake_engine.streaming import DONE, Reply, as_int, generate, json_response, read_json
from orchestrator.fake_engine.text import count_prompt_tokens, embed

_ERROR_TYPES = {
    400: "BadRequestError",
    404: "NotFoundError",
    429: "RateLimitError",
    500: "InternalServerError",
    503: "ServiceUnavailableError",
}


def error(status: int, message: str) -> web.Response:
    kind = _ERROR_TYPES.get(status, "InternalServerError")
    body = {"error": {"message": message, "type": kind, "param": None, "code": status}}
    return json_response(body, status=status)


def loading_error() -> web.Response:
    return error(503, "the model is still loading")


def routes(engine: FakeEngine) -> list[web.RouteDef]:
    model = engine.config.model

    async def health(request: web.Request) -> web.Response:
        return web.Response()

    async def version(request: web.Request) -> web.Response:
        return json_response({"version": engine.config.version})

    async def models(request: web.Request) -> web.Response:
        card = {
            "id": model,
            "object": "model",
            "created": int(time.time()),
            "owned_by": "vllm",
            "root": model,
            "parent": None,
            "max_model_len": engine.config.ctx_size,
        }
        return json_response({"object": "list", "data": [card]})

    async def completions(request: web.Request) -> web.StreamResponse:
        return await _generate(request, engine, chat=False)

    async def chat_completions(request: web.Request) -> web.StreamResponse:
        return await _generate(request, engine, chat=True)

    async def embeddings(request: web.Request) -> web.Response:
        body = await read_json(request)
        if body is None:
            return error(400, "the request body must be a JSON object")
        texts = _embedding_inputs(body.get("input"))
        if texts is None:
            return error(400, "'input' must be a string, a list of strings, or token ids")
        dim = engine.config.embedding_dim
        data = [{"object": "embedding", "index": i, "embedding": embed(t, dim)} for i, t in enumerate(texts)]
        tokens = sum(count_prompt_tokens(t) for t in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return json_response({"object": "list", "model": model, "data": data, "usage": usage})

    return [
        web.get("/health", health),
        web.get("/version", version),
        web.get("/v1/models", models),
        web.post("/v1/completions", completions),
        web.post("/v1/chat/completions", chat_completions),
        web.post("/v1/embeddings", embeddings),
    ]


async def _generate(request: web.Request, engine: FakeEngine, *, chat: bool) -> web.StreamResponse:
    body = await read_json(request)
    if body is None:
        return error(400, "the request body must be a JSON object")
    if body.get("model") not in (None, engine.config.model):
        return error(404, f"The model `{body['model']}` does not exist.")
    prompt = _chat_prompt(body.get("messages")) if chat else _completion_prompt(body.get("prompt"))
    if prompt is None:
        return error(400, "'messages' must be a list of messages" if chat else "'prompt' must be a string")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens")) if chat else body.get("max_tokens")
    try:
        plan = engine.plan(prompt, as_int(max_tokens), as_int(body.get("seed")), bool(body.get("stream")))
    except FaultSyntaxError as exc:
        return error(400, str(exc))
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
    reply = ChatReply(engine, plan, include_usage) if chat else CompletionReply(engine, plan, include_usage)
    return await generate(request, engine, plan, reply, error)


class CompletionReply(Reply):
    """`text_completion` objects; subclassed for chat, which differs in the choice's shape."""

    object_name = "text_completion"
    id_prefix = "cmpl-"

    def __init__(self, engine: FakeEngine, plan: Plan, include_usage: bool) -> None:
        self.plan = plan
        self.model = engine.config.model
        self.include_usage = include_usage
        self.id = f"{self.id_prefix}{uuid.uuid4().hex}"
        self.created = int(time.time())

    def choice(self, content: str, finish_reason: str | None) -> dict[str, Any]:
        return {"index": 0, "text": content, "logprobs": None, "finish_reason": finish_reason, "stop_reason": None}

    def token(self, run: Run, index: int, piece: str) -> Any:
        return self.chunk([self.choice(piece, None)])

    def closing(self, run: Run) -> list[Any]:
        frames: list[Any] = [self.chunk([self.choice("", self.plan.finish)])]
        if self.include_usage:
            frames.append(self.chunk([], usage=self.usage()))
        return [*frames, DONE]

    def body(self, run: Run) -> Any:
        return {
            "id": self.id,
            "object": self.object_name.removesuffix(".chunk"),
            "created": self.created,
            "model": self.model,
            "choices": [self.choice(self.plan.text, self.plan.finish)],
            "usage": self.usage(),
        }

    def chunk(self, choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> dict[str, Any]:
        frame = {"id": self.id, "object": self.object_name, "created": self.created, "model": self.model}
        frame["choices"] = choices
        if self.include_usage:
            frame["usage"] = usage
        return frame

    def usage(self) -> dict[str, int]:
        prompt, completion = self.plan.prompt_tokens, len(self.plan.pieces)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


class ChatReply(CompletionReply):
    object_name = "chat.completion.chunk"
    id_prefix = "chatcmpl-"

    def opening(self, run: Run) -> list[Any]:
        return [self.chunk([self._delta({"role": "assistant", "content": ""}, None)])]

    def choice(self, content: str, finish_reason: str | None) -> dict[str, Any]:
        if self.plan.stream:
            return self._delta({"content": content} if content else {}, finish_reason)
        message = {"role": "assistant", "content": content}
        return {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}

    def _delta(self, delta: dict[str, str], finish_reason: str | None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def _completion_prompt(prompt: Any) -> str | None:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        return prompt[0]
    if isinstance(prompt, list) and all(isinstance(t, int) for t in prompt):
        return " ".join(str(t) for t in prompt)
    return None


def _chat_prompt(messages: Any) -> str | None:
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        return None
    parts: list[str] = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.extend(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return "\n".join(parts)


def _embedding_inputs(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [" ".join(str(v) for v in value)]
    return None
