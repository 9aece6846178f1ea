"""A body escaping half a surrogate pair is refused with the envelope, on every JSON endpoint.

`"\\ud800"` is valid JSON but no text: UTF-8 cannot encode it, so no database,
artifact or SSE stream can hold it. It used to reach storage wherever a
field takes any JSON: POST /v2/artifacts answered 500, and a node whose GPU
`device_id` held one made every later GET /v2/nodes a 500.
"""

from __future__ import annotations

import json

import pytest

from orchestrator.artifacts.models import Artifact
from orchestrator.tasks.models import Task
from tests.conftest import assert_envelope
from tests.tasks.conftest import add_pool, task_body

pytestmark = pytest.mark.django_db

LONE = ["\\ud800", "\\udfff", "\\uDBFF", "a\\ud83d", "\\ude80b"]


def escaped(body: dict[str, object], field: str, escape: str) -> str:
    """The body's JSON with `escape` written, as is, inside the string of `field`."""
    marker = "@@ESCAPE@@"
    return json.dumps({**body, field: marker}).replace(marker, escape)


@pytest.mark.parametrize("escape", LONE)
def test_an_artifact_with_a_lone_surrogate_is_refused(bob, escape):
    raw = escaped({"kind": "plan", "content": {}}, "kind", "plan").replace(
        '"content": {}', f'"content": {{"x": "{escape}"}}'
    )

    response = bob.post("/v2/artifacts", raw=raw)

    body = assert_envelope(response, 400, "INVALID_PARAMS")
    assert "surrogate" in body["message"]
    assert not Artifact.objects.exists()


def test_a_node_cannot_store_one_where_any_json_is_taken(alice):
    # `device_id` takes any JSON: stored, the surrogate made every later GET /v2/nodes a 500
    raw = '{"node_id": "n1", "capabilities": {"gpus": [{"device_id": "\\ud800"}]}, "pools": []}'

    response = alice.post("/v2/nodes/register", raw=raw)

    assert_envelope(response, 400, "INVALID_PARAMS")
    listed = alice.get("/v2/nodes")
    assert listed.status_code == 200
    assert listed.json()["count"] == 0


@pytest.mark.parametrize("escape", LONE)
def test_a_task_with_a_lone_surrogate_is_refused_before_admission(bob, escape):
    # (string fields refused these already, as DRF's CharField does; the parser now refuses them first)
    add_pool("p1", "http://127.0.0.1:9", slots=2)
    body = task_body()

    response = bob.post("/v2/tasks", raw=escaped(body, "prompt", escape))

    assert_envelope(response, 400, "INVALID_PARAMS")
    assert not Task.objects.filter(id=body["task_id"]).exists()


def test_a_lone_surrogate_in_a_key_is_refused_too(bob):
    response = bob.post("/v2/artifacts", raw='{"kind": "plan", "content": {"\\udc00": 1}}')

    assert_envelope(response, 400, "INVALID_PARAMS")


@pytest.mark.parametrize(
    ("escape", "text"),
    [
        ("\\ud83d\\ude80", "🚀"),  # a whole pair: one character
        ("\\u00e9t\\u00e9", "été"),  # what ASCII-only encoders (Python's json by default) send
        ("\\\\ud800", "\\ud800"),  # an escaped backslash, then letters: no surrogate at all
    ],
)
def test_escapes_that_spell_text_are_accepted(bob, escape, text):
    raw = '{"kind": "plan", "content": {"x": "' + escape + '"}}'

    response = bob.post("/v2/artifacts", raw=raw)

    assert response.status_code == 201, response.content
    assert bob.get(f"/v2/artifacts/{response.json()['id']}").json()["content"] == {"x": text}


def test_a_task_whose_prompt_escapes_a_whole_pair_is_admitted(bob):
    add_pool("p1", "http://127.0.0.1:9", slots=2)
    body = task_body()

    response = bob.post("/v2/tasks", raw=escaped(body, "prompt", "go \\ud83d\\ude80"))

    assert response.status_code == 202, response.content
    assert Task.objects.get(id=body["task_id"]).prompt == "go 🚀"
