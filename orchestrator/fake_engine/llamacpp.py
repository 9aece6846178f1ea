"""llama.cpp's llama-server: /health, /props, /slots, /completion, /embedding."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from orchestrator.fake_engine.config import FaultSyntaxError
from orchestrator.fake_engine.engine import FakeEngine, Plan, Run
from orchestrator.fake_engine.streaming import Reply, as_int, generate, json_response, read_json
from orchestrator.fake_engine.text import embed

_ERROR_TYPES = {
    400: "invalid_request_error",
    404: "not_found_error",
    501: "not_supported_error",
    503: "unavailable_error",
}

# llama-server reports a stop at the token limit as "limit" and an end-of-stream token as "eos".
_STOP_TYPES = {"length": "limit", "stop": "eos"}


def error(status: int, message: str) -> web.Response:
    body = {"error": {"code": status, "message": message, "type": _ERROR_TYPES.get(status, "server_error")}}
    return json_response(body, status=status)


def loading_error() -> web.Response:
    return error(503, "Loading model")


def routes(engine: FakeEngine) -> list[web.RouteDef]:
    async def health(request: web.Request) -> web.Response:
        return json_response({"status": "ok"})

    async def props(request: web.Request) -> web.Response:
        return json_response(_props(engine))

    async def slots(request: web.Request) -> web.Response:
        return json_response([_slot(engine, slot) for slot in range(engine.slots.count)])

    async def completion(request: web.Request) -> web.StreamResponse:
        body = await read_json(request)
        if body is None:
            return error(400, "the request body must be a JSON object")
        prompt, stream = _prompt_text(body.get("prompt", "")), bool(body.get("stream"))
        try:
            plan = engine.plan(prompt, as_int(body.get("n_predict")), as_int(body.get("seed")), stream)
        except FaultSyntaxError as exc:
            return error(400, str(exc))
        return await generate(request, engine, plan, CompletionReply(engine, plan, body), error)

    async def embedding(request: web.Request) -> web.Response:
        body = await read_json(request)
        if body is None:
            return error(400, "the request body must be a JSON object")
        inputs = body.get("content", body.get("input"))
        texts = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            return error(400, '"content" must be a string or a list of strings')
        dim = engine.config.embedding_dim
        # Without pooling a vector per token; with pooling (the default) one vector, still nested.
        return json_response([{"index": i, "embedding": [embed(t, dim)]} for i, t in enumerate(texts)])

    return [
        web.get("/health", health),
        web.get("/props", props),
        web.get("/slots", slots),
        web.post("/completion", completion),
        web.post("/completions", completion),
        web.post("/embedding", embedding),
        web.post("/embeddings", embedding),
    ]


class CompletionReply(Reply):
    def __init__(self, engine: FakeEngine, plan: Plan, body: dict[str, Any]) -> None:
        self.engine = engine
        self.plan = plan
        self.options = body

    def token(self, run: Run, index: int, piece: str) -> dict[str, Any]:
        return {
            "index": 0,
            "content": piece,
            "tokens": [],
            "stop": False,
            "id_slot": run.slot,
            "tokens_predicted": index + 1,
            "tokens_evaluated": self.plan.prompt_tokens,
        }

    def closing(self, run: Run) -> list[Any]:
        return [self._final(run, content="")]

    def body(self, run: Run) -> Any:
        return self._final(run, content=self.plan.text)

    def _final(self, run: Run, content: str) -> dict[str, Any]:
        plan = self.plan
        predicted = len(plan.pieces)
        return {
            "index": 0,
            "content": content,
            "tokens": [],
            "id_slot": run.slot,
            "stop": True,
            "model": self.engine.config.model,
            "tokens_predicted": predicted,
            "tokens_evaluated": plan.prompt_tokens,
            "generation_settings": self._settings(),
            "prompt": plan.prompt,
            "has_new_line": "\n" in plan.text,
            "truncated": False,
            "stop_type": _STOP_TYPES[plan.finish],
            "stopping_word": "",
            "tokens_cached": plan.prompt_tokens + predicted,
            "timings": _timings(plan.prompt_tokens, run.prompt_ms, predicted, run.predicted_ms),
        }

    def _settings(self) -> dict[str, Any]:
        return {
            "n_predict": len(self.plan.pieces),
            "seed": self.plan.seed if self.plan.seed is not None else 4294967295,
            "temperature": self.options.get("temperature", 0.8),
            "stream": self.plan.stream,
            "cache_prompt": self.options.get("cache_prompt", True),
        }


def _timings(prompt_n: int, prompt_ms: float, predicted_n: int, predicted_ms: float) -> dict[str, float]:
    return {
        "prompt_n": prompt_n,
        "prompt_ms": round(prompt_ms, 3),
        "prompt_per_token_ms": round(prompt_ms / prompt_n, 3) if prompt_n else 0.0,
        "prompt_per_second": round(prompt_n * 1000 / prompt_ms, 3) if prompt_ms else 0.0,
        "predicted_n": predicted_n,
        "predicted_ms": round(predicted_ms, 3),
        "predicted_per_token_ms": round(predicted_ms / predicted_n, 3) if predicted_n else 0.0,
        "predicted_per_second": round(predicted_n * 1000 / predicted_ms, 3) if predicted_ms else 0.0,
    }


def _props(engine: FakeEngine) -> dict[str, Any]:
    config = engine.config
    return {
        "default_generation_settings": {
            "id": 0,
            "id_task": -1,
            "n_ctx": config.ctx_size,
            "speculative": False,
            "is_processing": False,
            "params": {"n_predict": -1, "seed": 4294967295, "temperature": 0.8, "top_k": 40, "top_p": 0.95},
        },
        "total_slots": config.slots,
        "model_alias": config.model,
        "model_path": config.model,
        "modalities": {"vision": False, "audio": False},
        "chat_template": "",
        "bos_token": "<s>",
        "eos_token": "</s>",
        "build_info": config.version,
    }


def _slot(engine: FakeEngine, slot: int) -> dict[str, Any]:
    task = engine.slots.tasks.get(slot)
    return {
        "id": slot,
        "id_task": task if task is not None else -1,
        "n_ctx": engine.config.ctx_size,
        "speculative": False,
        "is_processing": task is not None,
        "params": {"n_predict": -1, "seed": 4294967295, "temperature": 0.8},
        "next_token": {"has_next_token": task is not None, "has_new_line": False, "n_remain": -1, "n_decoded": 0},
    }


def _prompt_text(prompt: Any) -> str:
    """llama-server takes a string, token ids, or a mix; ids count as one word each here."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list):
        return " ".join(_prompt_text(part) if isinstance(part, list | str) else str(part) for part in prompt)
    return str(prompt)
