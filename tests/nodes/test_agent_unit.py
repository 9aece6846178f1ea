"""The node agent's loop and reconciliation, with the control plane and engines mocked (respx)."""

import json
from pathlib import Path

import httpx
import pytest
import respx

from nodes.agent.agent import NodeAgent
from nodes.agent.config import ConfigError, load_config, parse_config
from nodes.agent.runtime import PoolRuntime

CP = "http://control.test"
ENGINE = "http://engine.test"


def config(**overrides):
    raw = {
        "control_plane_url": CP,
        "token": "orchd_operator",
        "node_id": "gpu-1",
        "heartbeat_interval_ms": 1000,
        "pools": [{"pool_id": "p1", "engine": "llamacpp", "engine_url": ENGINE, "models": ["m1"], "slots": 2}],
        **overrides,
    }
    return parse_config(raw)


def engine_up(slots_busy=0):
    respx.get(f"{ENGINE}/health").respond(200, json={"status": "ok"})
    respx.get(f"{ENGINE}/props").respond(200, json={"total_slots": 2, "build_info": "b1"})
    slots = [{"id": i, "is_processing": i < slots_busy} for i in range(2)]
    respx.get(f"{ENGINE}/slots").respond(200, json=slots)


def answer(desired=None):
    return {"success": True, "next_heartbeat_ms": 1000, "pools": [{"pool_id": "p1", "desired": desired or {}}]}


@respx.mock
def test_it_registers_then_heartbeats_with_slots_probed_from_the_engine():
    engine_up(slots_busy=1)
    register = respx.post(f"{CP}/v2/nodes/register").respond(200, json={"success": True, "node_token": "orchd_node"})
    beat = respx.post(f"{CP}/v2/nodes/gpu-1/heartbeat").respond(200, json=answer())
    agent = NodeAgent(config())

    assert agent.step() == 1.0

    registered = json.loads(register.calls.last.request.content)
    assert registered["pools"][0]["pool_id"] == "p1"
    report = json.loads(beat.calls.last.request.content)["pools"][0]
    assert (report["ready"], report["slots_free"], report["slots_total"]) == (True, 1, 2)
    assert beat.calls.last.request.headers["Authorization"] == "Bearer orchd_node", "switches to its node token"


@respx.mock
def test_it_registers_again_after_a_404():
    engine_up()
    register = respx.post(f"{CP}/v2/nodes/register").respond(200, json={"success": True})
    respx.post(f"{CP}/v2/nodes/gpu-1/heartbeat").mock(
        side_effect=[httpx.Response(404, json={"code": "NOT_FOUND"}), httpx.Response(200, json=answer())]
    )
    agent = NodeAgent(config())

    assert agent.step() == 0.0
    assert agent.registered is False
    agent.step()

    assert register.call_count == 2
    assert agent.registered is True


@respx.mock
def test_it_backs_off_with_jitter_while_the_control_plane_is_down():
    respx.post(f"{CP}/v2/nodes/register").mock(side_effect=httpx.ConnectError("refused"))
    agent = NodeAgent(config(max_backoff_s=4.0))

    delays = [agent.step() for _ in range(6)]

    assert all(0.25 <= delay <= 4.0 for delay in delays)
    assert delays[-1] >= 2.0, "grows towards the ceiling"
    assert agent.registered is False


@respx.mock
def test_a_5xx_counts_as_down_and_recovery_resets_the_backoff():
    engine_up()
    respx.post(f"{CP}/v2/nodes/register").mock(
        side_effect=[httpx.Response(503), httpx.Response(200, json={"success": True})]
    )
    respx.post(f"{CP}/v2/nodes/gpu-1/heartbeat").respond(200, json=answer())
    agent = NodeAgent(config())

    agent.step()
    assert agent.failures == 1
    agent.step()
    assert agent.failures == 0


@respx.mock
def test_desired_draining_is_reported_back():
    engine_up()
    respx.post(f"{CP}/v2/nodes/register").respond(200, json={"success": True})
    beat = respx.post(f"{CP}/v2/nodes/gpu-1/heartbeat").respond(200, json=answer({"draining": True}))
    agent = NodeAgent(config())

    agent.step()
    agent.step()

    assert json.loads(beat.calls.last.request.content)["pools"][0]["draining"] is True


@respx.mock
def test_an_unreachable_engine_is_reported_not_ready_with_the_error():
    respx.get(f"{ENGINE}/health").mock(side_effect=httpx.ConnectError("refused"))
    respx.post(f"{CP}/v2/nodes/register").respond(200, json={"success": True})
    beat = respx.post(f"{CP}/v2/nodes/gpu-1/heartbeat").respond(200, json=answer())

    NodeAgent(config()).step()

    report = json.loads(beat.calls.last.request.content)["pools"][0]
    assert report["ready"] is False
    assert "ConnectError" in report["last_error"]


@respx.mock
def test_shutdown_deregisters():
    engine_up()
    respx.post(f"{CP}/v2/nodes/register").respond(200, json={"success": True})
    respx.post(f"{CP}/v2/nodes/gpu-1/heartbeat").respond(200, json=answer())
    delete = respx.delete(f"{CP}/v2/nodes/gpu-1").respond(204)
    agent = NodeAgent(config())
    agent.step()

    agent.shutdown()

    assert delete.called


def test_reload_of_an_unmanaged_pool_fails_and_says_why():
    runtime = PoolRuntime.from_config(config().pools[0], None)

    runtime.reload("m2")

    assert runtime.models == ("m1",)
    assert "no 'command'" in runtime.last_error
    assert runtime.failed_target == "m2"


def test_a_failed_target_is_not_retried_until_the_desired_model_changes():
    runtime = PoolRuntime.from_config(config().pools[0], None)
    runtime.failed_target = "m2"

    runtime.reconcile({"model_ref": "m2"})
    assert runtime.busy.locked() is False, "no reload started for the failed target"
    runtime.reconcile({"model_ref": None})
    assert runtime.failed_target is None


def test_purge_deletes_models_inside_models_dir_only(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    (models / "m1.gguf").write_bytes(b"x")
    outside = tmp_path / "precious.gguf"
    outside.write_bytes(b"y")
    pool = config(
        models_dir=str(models),
        pools=[
            {
                "pool_id": "p1",
                "engine": "llamacpp",
                "engine_url": ENGINE,
                "models": ["m1"],
                "slots": 1,
                "model_paths": {"m1": "m1.gguf", "evil": "../precious.gguf"},
                "cache_dirs": [str(tmp_path)],
            }
        ],
    )
    runtime = PoolRuntime.from_config(pool.pools[0], pool.models_dir)

    runtime.purge({"id": "p-1", "purge_models": ["m1", "evil"], "delete_cache_dirs": True, "drain_first": False})

    assert not (models / "m1.gguf").exists()
    assert outside.exists()
    assert runtime.purged_id == "p-1"
    assert "outside" in runtime.last_error


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"token": ""}, "token"),
        ({"node_id": "../x"}, "node_id"),
        ({"pools": []}, "at least one pool"),
        ({"pools": [{"pool_id": "p1", "engine": "ollama", "engine_url": ENGINE}]}, "engine must be one of"),
        ({"pools": [{"pool_id": "p1", "engine": "llamacpp"}]}, "engine_url or command"),
        ({"pools": [{"pool_id": "p1", "engine": "llamacpp", "engine_url": ENGINE, "slots": 0}]}, "slots"),
    ],
)
def test_bad_configs_are_refused_with_a_reason(change, message, monkeypatch):
    monkeypatch.delenv("ORCHD_NODE_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=message):
        config(**change)


def test_config_files_load_from_toml_and_yaml(tmp_path):
    toml = tmp_path / "node.toml"
    toml.write_text(
        'control_plane_url = "http://cp:8080"\ntoken = "t"\nnode_id = "n1"\n'
        '[[pools]]\npool_id = "p"\nengine = "tgi"\nengine_url = "http://e:80"\nmodels = ["m"]\nslots = 3\n'
    )
    yaml = tmp_path / "node.yaml"
    yaml.write_text(
        "control_plane_url: http://cp:8080\ntoken: t\nnode_id: n1\n"
        "pools:\n  - {pool_id: p, engine: tgi, engine_url: 'http://e:80', models: [m], slots: 3}\n"
    )

    assert load_config(toml).pools == load_config(yaml).pools
    assert load_config(toml).pools[0].slots == 3


def test_an_unreadable_config_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(Path(tmp_path / "missing.toml"))
    broken = tmp_path / "broken.toml"
    broken.write_text("node_id = ")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(broken)
