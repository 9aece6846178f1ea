"""The task path against a real llama.cpp `llama-server` running a tiny GGUF model."""

from __future__ import annotations

import httpx
import pytest

from tests.support.llama import run_llama_server
from tests.support.processes import wait_until
from tests.support.web import Stream, parse_sse, read_stream
from tests.tasks.conftest import add_pool

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def llama(llama_server_binary, tiny_model_factory, tmp_path):
    model = tiny_model_factory(seed=0, name="tiny", context_length=2048)
    with run_llama_server(model, slots=2, ctx=2048, binary=llama_server_binary, log_dir=tmp_path) as server:
        yield server


def test_a_task_streams_from_llama_server(web, llama):
    add_pool("llama", llama.url, slots=2, ctx_max=2048)
    client = web()
    task_id = client.submit(max_tokens=16, seed=7, prompt="the model server").json()["task_id"]

    stream = read_stream(client.server.url, client.token, task_id)

    assert stream.names[0] == "started"
    assert stream.names.count("token") == 16
    assert "\ufffd" not in stream.text, "tokens relay as valid UTF-8"
    end = stream.terminal
    assert end.event == "end"
    assert end.data["tokens_out"] == 16
    assert end.data["finish_reason"] == "length"
    assert end.data["decode_ms"] >= 0


def test_cancel_mid_stream_frees_the_llama_server_slot(web, llama):
    add_pool("llama", llama.url, slots=2, ctx_max=2048)
    client = web()
    task_id = client.submit(max_tokens=1500, prompt="the").json()["task_id"]
    url = f"{client.server.url}/v2/tasks/{task_id}/events"

    with httpx.stream("GET", url, headers={"Authorization": f"Bearer {client.token}"}, timeout=60) as response:
        lines = response.iter_lines()
        parse_sse(lines, Stream(), stop_after=2)
        assert client.cancel(task_id).status_code == 204
        rest = parse_sse(lines, Stream())

    assert rest.terminal.event == "end"
    assert rest.terminal.data["canceled"] is True
    assert "token" not in [event.event for event in rest.events[rest.events.index(rest.terminal) :]][1:]
    wait_until(
        lambda: not any(slot["is_processing"] for slot in httpx.get(f"{llama.url}/slots").json()),
        timeout_s=10,
        what="llama-server to see the request closed and free its slot",
    )
