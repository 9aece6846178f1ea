"""Enqueue and stream over real HTTP: a web process, a fake engine process, SSE to the client."""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest

from orchestrator.tasks.models import Task
from tests.engines import run_fake_engine
from tests.support.processes import wait_until
from tests.support.web import read_stream
from tests.tasks.conftest import add_pool

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("protocol", ["llamacpp", "openai", "tgi"])
def test_a_task_streams_from_each_engine_protocol(web, protocol):
    engine_kind = {"llamacpp": "llamacpp", "openai": "vllm", "tgi": "tgi"}[protocol]
    with run_fake_engine(protocol, slots=2, model="tiny") as engine:
        add_pool("p1", engine.url, engine=engine_kind)
        client = web()

        admitted = client.submit(engine=engine_kind, max_tokens=12, seed=3)
        assert admitted.status_code == 202, admitted.text
        body = admitted.json()
        stream = read_stream(client.server.url, client.token, body["task_id"])

    assert stream.names[0] == "started"
    tokens = [event for event in stream.events if event.event == "token"]
    assert [event.data["i"] for event in tokens] == list(range(12))
    assert [event.id for event in stream.events] == list(range(len(stream.events)))
    end = stream.terminal
    assert end.event == "end", end
    assert end.data["tokens_out"] == 12
    assert end.data["finish_reason"] == "length"
    assert end.data["canceled"] is False
    assert stream.text.strip()
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert stream.headers["cache-control"] == "no-cache"
    assert stream.headers["x-accel-buffering"] == "no"
    assert "x-correlation-id" in stream.headers
    status = wait_until(lambda: (s := client.status(body["task_id"]))["state"] == "completed" and s, what="completed")
    assert status["tokens_out"] == 12
    assert status["pool_id"] == "p1"
    assert status["transcript_artifact_id"].startswith("sha256:")


def test_the_admission_answer_has_the_spec_fields(web):
    with run_fake_engine("llamacpp") as engine:
        add_pool("p1", engine.url)
        client = web()

        response = client.submit()

    assert response.status_code == 202
    body = response.json()
    assert set(body) >= {"task_id", "queue_position", "predicted_start_ms", "backoff_ms", "streams", "preparation"}
    assert body["streams"] == {
        "sse": f"/v2/tasks/{body['task_id']}/events",
        "sse_verbose": f"/v2/tasks/{body['task_id']}/events?verbose=true",
    }
    assert body["preparation"] == {"steps": []}
    assert response.headers["Location"] == f"/v2/tasks/{body['task_id']}"
    assert Task.objects.filter(id=body["task_id"]).exists(), "persisted before the 202"


def test_cancel_mid_stream_stops_tokens_and_closes_the_engine_request(web):
    with run_fake_engine("llamacpp", slots=1, tokens_per_s=20) as engine:
        add_pool("p1", engine.url, slots=1)
        client = web()
        task_id = client.submit(max_tokens=200).json()["task_id"]
        url = f"{client.server.url}/v2/tasks/{task_id}/events"
        with httpx.stream("GET", url, headers={"Authorization": f"Bearer {client.token}"}, timeout=30) as response:
            lines = response.iter_lines()
            from tests.support.web import Stream, parse_sse

            before = parse_sse(lines, Stream(), stop_after=3)
            assert client.cancel(task_id).status_code == 204
            after = parse_sse(lines, Stream())

        events = before.events + after.events
        end = events[-1]
        assert end.event == "end"
        assert end.data["canceled"] is True
        assert end.data["finish_reason"] == "canceled"
        assert all(event.id < end.id for event in events if event.event == "token")
        assert [e.event for e in events].count("end") == 1
        engine.wait_for_stats(timeout=5, client_disconnects=1, active=0)
    assert client.status(task_id)["state"] == "canceled"


def test_cancel_of_a_finished_task_is_a_no_op_and_unknown_is_404(web):
    with run_fake_engine("llamacpp") as engine:
        add_pool("p1", engine.url)
        client = web()
        task_id = client.submit(max_tokens=3).json()["task_id"]
        read_stream(client.server.url, client.token, task_id)

        assert client.cancel(task_id).status_code == 204
        assert client.status(task_id)["state"] == "completed"
        missing = client.cancel("no-such-task")
    assert missing.status_code == 404
    assert missing.json()["code"] == "NOT_FOUND"


def test_late_attach_replays_everything_and_last_event_id_resumes(web):
    with run_fake_engine("llamacpp") as engine:
        add_pool("p1", engine.url)
        client = web()
        task_id = client.submit(max_tokens=10).json()["task_id"]
        wait_until(lambda: client.status(task_id)["state"] == "completed", what="completed before anyone attached")

        full = read_stream(client.server.url, client.token, task_id)
        resumed = read_stream(client.server.url, client.token, task_id, last_event_id=5)
        second_watcher = read_stream(client.server.url, client.token, task_id)

    assert full.names[0] == "started"
    assert [event.id for event in resumed.events] == [event.id for event in full.events if event.id > 5]
    assert second_watcher.events == full.events


def test_verbose_metrics_frames_carry_a_human_line(web):
    with run_fake_engine("llamacpp", tokens_per_s=40) as engine:
        add_pool("p1", engine.url)
        client = web()
        task_id = client.submit(max_tokens=40).json()["task_id"]

        verbose = read_stream(client.server.url, client.token, task_id, verbose=True)
        plain = read_stream(client.server.url, client.token, task_id)

    assert any("human" in e.data for e in verbose.events if e.event == "metrics")
    assert not any("human" in e.data for e in plain.events if e.event == "metrics")


def test_fifty_concurrent_streams_all_complete(web):
    with run_fake_engine("llamacpp", slots=16, tokens_per_s=200) as engine:
        add_pool("p1", engine.url, slots=16)
        client = web()
        task_ids = [client.submit(max_tokens=20, session_id=f"s-{i}").json()["task_id"] for i in range(50)]

        with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
            streams = list(pool.map(lambda t: read_stream(client.server.url, client.token, t, timeout_s=120), task_ids))
        max_active = engine.stats()["max_active_seen"]

    assert all(stream.terminal.event == "end" for stream in streams)
    assert all(stream.terminal.data["tokens_out"] == 20 for stream in streams)
    assert max_active <= 16


def test_an_unknown_task_stream_is_a_404_envelope(web):
    client = web()

    response = client.http.get("/v2/tasks/nope/events")

    assert response.status_code == 404
    assert response.json()["code"] == "NOT_FOUND"


def test_resuming_after_the_terminal_frame_ends_at_once(web):
    with run_fake_engine("llamacpp") as engine:
        add_pool("p1", engine.url)
        client = web()
        task_id = client.submit(max_tokens=3).json()["task_id"]
        full = read_stream(client.server.url, client.token, task_id)

        headers = {"Authorization": f"Bearer {client.token}", "Last-Event-ID": str(full.terminal.id)}
        response = httpx.get(f"{client.server.url}/v2/tasks/{task_id}/events", headers=headers, timeout=10)

    assert response.status_code == 200
    assert response.text == ""


def test_a_quiet_stream_gets_keep_alive_comments(web):
    with run_fake_engine("llamacpp", ttft_ms=2500) as engine:
        add_pool("p1", engine.url)
        client = web(ORCHD_SSE_KEEPALIVE_S="1")
        task_id = client.submit(max_tokens=2).json()["task_id"]

        stream = read_stream(client.server.url, client.token, task_id)

    assert ": keep-alive" in stream.comments
    assert stream.terminal.event == "end"


def test_the_transcript_holds_the_frames_tags_and_metadata(web):
    from orchestrator.artifacts.services import find_artifact, load_document

    with run_fake_engine("llamacpp") as engine:
        add_pool("p1", engine.url)
        client = web()
        task_id = client.submit(max_tokens=4, session_id="s-tr").json()["task_id"]
        stream = read_stream(client.server.url, client.token, task_id)
        status = wait_until(lambda: (s := client.status(task_id))["transcript_artifact_id"] and s, what="transcript")

    artifact = find_artifact(status["transcript_artifact_id"])
    assert artifact is not None
    document = load_document(artifact)
    assert document["kind"] == "transcript"
    assert [item["event"] for item in document["content"]["events"]] == stream.names
    assert sorted(document["tags"]) == sorted(["sse", f"task:{task_id}", "session:s-tr"])
    assert document["metadata"]["outcome"] == "completed"
    assert document["metadata"]["tokens_out"] == 4
    assert "prompt" not in document["content"], "prompts are not stored by default"
