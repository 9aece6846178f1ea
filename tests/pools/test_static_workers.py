import httpx
import pytest
import respx

from nodes.models import Node
from pools.models import Pool
from pools.services import probe_static_pools
from tests.conftest import assert_envelope
from tests.nodes.bodies import registration

pytestmark = pytest.mark.django_db

WORKER = {
    "pool_id": "static-1",
    "engine": "llamacpp",
    "engine_url": "http://127.0.0.1:9999",
    "models": ["m"],
    "slots_total": 2,
    "ctx_max": 4096,
}


def test_a_standalone_engine_registers_as_a_pool_of_the_static_node(alice):
    response = alice.post("/v2/workers/register", WORKER)

    assert response.status_code == 201, response.content
    pool = Pool.objects.get(id="static-1")
    assert pool.node_id == "static"
    assert Node.objects.get(id="static").status == "online"
    assert pool.ready is False, "ready only after a probe"


@respx.mock
def test_the_probe_job_marks_a_healthy_engine_ready():
    Pool.objects.all().delete()
    from pools.services import PoolSpec, register_static_pool

    register_static_pool(
        PoolSpec(pool_id="static-1", engine="llamacpp", engine_url="http://engine.test", models=("m",))
    )
    respx.get("http://engine.test/health").respond(200, json={"status": "ok"})
    respx.get("http://engine.test/props").respond(200, json={"total_slots": 2, "build_info": "b5000"})
    respx.get("http://engine.test/slots").respond(
        200, json=[{"id": 0, "is_processing": True}, {"id": 1, "is_processing": False}]
    )

    assert probe_static_pools() == {"static-1": True}

    pool = Pool.objects.get(id="static-1")
    assert (pool.ready, pool.slots_free, pool.engine_version) == (True, 1, "b5000")


@respx.mock
def test_the_probe_job_marks_an_unreachable_engine_unready():
    from pools.services import PoolSpec, register_static_pool

    pool = register_static_pool(PoolSpec(pool_id="s", engine="openai", engine_url="http://down.test", models=("m",)))
    Pool.objects.filter(pk=pool.pk).update(ready=True)
    respx.get("http://down.test/v1/models").mock(side_effect=httpx.ConnectError("refused"))

    assert probe_static_pools() == {"s": False}
    assert "ConnectError" in Pool.objects.get(id="s").last_error


def test_a_static_pool_id_owned_by_an_agent_node_is_409(alice):
    alice.post("/v2/nodes/register", registration(pools=[{**registration()["pools"][0], "pool_id": "static-1"}]))

    assert_envelope(alice.post("/v2/workers/register", WORKER), 409, "CONFLICT")


def test_static_pools_cannot_be_reloaded(alice):
    from catalog.models import CatalogModel

    CatalogModel.objects.create(id="m2")
    alice.post("/v2/workers/register", WORKER)

    assert_envelope(alice.post("/v2/pools/static-1/reload", {"new_model_ref": "m2"}), 409, "CONFLICT")


@pytest.mark.parametrize("field", ["engine", "engine_url", "slots_total", "pool_id"])
def test_a_worker_missing_a_field_is_400(alice, field):
    body = {key: value for key, value in WORKER.items() if key != field}

    envelope = assert_envelope(alice.post("/v2/workers/register", body), 400, "INVALID_PARAMS")
    assert field in envelope["details"]


def test_worker_registration_needs_an_operator(bob):
    assert_envelope(bob.post("/v2/workers/register", WORKER), 403, "FORBIDDEN")
