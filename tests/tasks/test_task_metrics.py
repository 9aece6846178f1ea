"""/metrics of a live web process reflects the task path's real events (and scraping changes nothing)."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.engines import run_fake_engine
from tests.support.processes import wait_until
from tests.support.web import read_stream
from tests.tasks.conftest import add_pool

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def scrape(url):
    text = httpx.get(f"{url}/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name, **labels):
    return sum(
        v for (n, ls), v in samples.items() if n == name and all(dict(ls).get(k) == x for k, x in labels.items())
    )


def test_task_metrics_come_from_real_events(web):
    with run_fake_engine("llamacpp", slots=1) as engine:
        add_pool("p1", engine.url, slots=1)
        client = web(ORCHD_ADMISSION_CAPACITY="1")
        done = client.submit(max_tokens=7).json()["task_id"]
        read_stream(client.server.url, client.token, done)
        canceled = client.submit(max_tokens=7, prompt="[[fault:stall_after=1]]").json()["task_id"]
        queued = client.submit(max_tokens=7).json()["task_id"]  # queued behind the stalled one
        assert client.submit(max_tokens=7).status_code == 429  # capacity 1
        client.cancel(canceled)
        # scrape a quiet system, so two scrapes must agree
        wait_until(lambda: client.status(queued)["state"] == "completed", what="the queued task to finish")

        first = scrape(client.server.url)
        second = scrape(client.server.url)

    assert value(first, "tasks_enqueued_total", engine="llamacpp", priority="interactive") == 3
    assert value(first, "tasks_rejected_total", reason="ADMISSION_REJECT") == 1
    assert value(first, "admission_backpressure_events_total", policy="reject") == 1
    assert value(first, "tasks_started_total", pool_id="p1") >= 1
    assert value(first, "tokens_out_total", pool_id="p1") >= 7
    assert value(first, "tasks_completed_total", outcome="completed") >= 1
    assert value(first, "tasks_completed_total", outcome="canceled") == 1
    assert value(first, "tasks_canceled_total", reason="client") == 1
    assert value(first, "latency_first_token_ms_count", pool_id="p1") >= 1
    assert value(first, "latency_decode_ms_count", pool_id="p1") >= 1
    assert value(first, "admission_latency_ms_count") == 3
    assert value(first, "placement_decisions_total", outcome="placed") >= 2
    assert value(first, "queue_depth", engine="llamacpp", priority="interactive") in (0, 1)
    scraped_twice = {key: v for key, v in second.items() if key[0].startswith(("tasks_", "tokens_"))}
    assert scraped_twice == {key: v for key, v in first.items() if key[0].startswith(("tasks_", "tokens_"))}
