"""Every verification outcome increments catalog_verifications_total{result,reason,engine}."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from catalog.jobs import verify_model
from catalog.services import request_verification, run_verification
from nodes.models import NodeStatus
from tests.catalog.conftest import DIGEST_A, digest_of


def count(result: str, reason: str, engine: str) -> float:
    labels = {"result": result, "reason": reason, "engine": engine}
    return REGISTRY.get_sample_value("catalog_verifications_total", labels) or 0.0


@pytest.mark.parametrize(
    ("content", "digest", "result", "reason"),
    [
        (b"w", digest_of(b"w"), "pass", "digest_match"),
        (b"w", DIGEST_A, "fail", "digest_mismatch"),
        (b"w", "", "warn", "no_expected_digest"),
        (None, DIGEST_A, "fail", "file_not_found"),
    ],
)
def test_it_counts_each_outcome(make_model, model_file, models_dir, content, digest, result, reason):
    # given
    if content is not None:
        model_file("m", content)
    model = make_model("m", digest=digest)
    before = count(result, reason, "none")

    # when
    verify_model(str(request_verification(model).id))

    # then
    assert count(result, reason, "none") == before + 1


def test_it_labels_the_engine_of_a_pool_serving_the_model(make_model, model_file, make_pool):
    model_file("m", b"w")
    make_pool("p-off", node_id="n0", node_status=NodeStatus.OFFLINE, engine="tgi", models=["m"])
    make_pool("p-on", node_id="n1", engine="vllm", models=["other", "m"])
    model = make_model("m", digest=digest_of(b"w"))
    before = count("pass", "digest_match", "vllm")

    verify_model(str(request_verification(model).id))

    assert count("pass", "digest_match", "vllm") == before + 1


def test_it_counts_a_run_once_when_the_job_is_delivered_twice(make_model, model_file):
    model_file("m", b"w")
    model = make_model("m", digest=digest_of(b"w"))
    run = request_verification(model)
    before = count("pass", "digest_match", "none")

    run_verification(run.id)
    run_verification(run.id)

    assert count("pass", "digest_match", "none") == before + 1
