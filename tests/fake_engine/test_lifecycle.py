"""The process: ready line, 503 while loading, clean exit on signals, no database needed."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from tests.engines import start_fake_engine

pytestmark = pytest.mark.integration


def test_it_answers_503_while_loading_then_becomes_healthy(fake_engine):
    engine = fake_engine("llamacpp", load_ms=1500, wait_healthy=False)

    loading = httpx.get(f"{engine.url}/health")
    generate = httpx.post(f"{engine.url}/completion", json={"prompt": "hi"})
    stats = httpx.get(f"{engine.url}/_fake/stats")

    assert loading.status_code == generate.status_code == 503
    assert loading.json() == {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
    assert stats.status_code == 200
    deadline = time.monotonic() + 5
    while httpx.get(f"{engine.url}/health").status_code != 200:
        assert time.monotonic() < deadline, "the engine never finished loading"
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_it_exits_cleanly_on_a_signal_even_with_a_stream_open(signum, tmp_path):
    # given: an engine whose database does not exist, and a client stuck on a stalled stream
    database = tmp_path / "never-created.sqlite3"
    engine = start_fake_engine("tgi", env={"ORCHD_DATA_DIR": str(tmp_path), "DATABASE_URL": f"sqlite:///{database}"})
    try:
        body = {"inputs": "[[fault:stall_after=1]] hi", "parameters": {"max_new_tokens": 5}}
        with httpx.stream("POST", f"{engine.url}/generate_stream", json=body, timeout=10) as response:
            chunks = response.iter_raw()
            next(chunks)

            # when
            engine.process.send_signal(signum)

            # then
            assert engine.process.wait(timeout=5) == 0
    finally:
        engine.stop()
    assert not database.exists()
