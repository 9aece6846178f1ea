"""The node agent as a real process against a live control plane and real engine processes.

The control plane is pytest-django's live server (real HTTP on loopback);
the agent is `manage.py node_agent` in a subprocess; engines are
`manage.py fake_engine` processes — external ones the agent only probes,
and managed ones it starts and restarts for reloads.
"""

from __future__ import annotations

import sys

import httpx
import pytest

from catalog.models import CatalogModel
from nodes.models import Node, NodeStatus
from orchestrator.auth.models import Role
from orchestrator.auth.services import issue_token
from pools.models import Pool
from tests.engines import run_fake_engine
from tests.support.processes import ROOT, child_env, manage, running, stop, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

MANAGED_COMMAND = (
    f"{sys.executable} {ROOT / 'manage.py'} fake_engine --protocol llamacpp --host {{host}} --port {{port}} "
    "--model {model_ref} --slots {slots} --tokens-per-s 0"
)


def write_config(path, *, url, token, pools, models_dir=None):
    lines = [
        f'control_plane_url = "{url}"',
        f'token = "{token}"',
        'node_id = "gpu-it"',
        "heartbeat_interval_ms = 200",
        "max_backoff_s = 1.0",
    ]
    if models_dir:
        lines.append(f'models_dir = "{models_dir}"')
    for pool in pools:
        lines.append("[[pools]]")
        for key, value in pool.items():
            if isinstance(value, dict):
                inner = ", ".join(f'"{k}" = "{v}"' for k, v in value.items())
                lines.append(f"{key} = {{ {inner} }}")
            elif isinstance(value, str):
                lines.append(f'{key} = "{value}"')
            elif isinstance(value, list):
                lines.append(f"{key} = [{', '.join(repr(v).replace(chr(39), chr(34)) for v in value)}]")
            else:
                lines.append(f"{key} = {value}")
    path.write_text("\n".join(lines) + "\n")
    return path


def pool_state(pool_id):
    return Pool.objects.filter(id=pool_id).first()


def test_the_agent_registers_a_pool_whose_heartbeats_carry_slots_from_the_engine(live_server, tmp_path):
    token = issue_token("ops", Role.OPERATOR).value
    with run_fake_engine("llamacpp", slots=3) as engine:
        config = write_config(
            tmp_path / "node.toml",
            url=live_server.url,
            token=token,
            pools=[{"pool_id": "ext-1", "engine": "llamacpp", "engine_url": engine.url, "models": ["m1"], "slots": 3}],
        )
        with running(
            manage("node_agent", "--config", str(config)), child_env(tmp_path), tmp_path / "agent.log"
        ) as agent:
            pool = wait_until(lambda: (p := pool_state("ext-1")) and p.ready and p, what="pool ready")
            node = Node.objects.get(id="gpu-it")

            assert node.status == NodeStatus.ONLINE
            assert (pool.slots_total, pool.slots_free, pool.engine_url) == (3, 3, engine.url)

            assert stop(agent) == 0
        assert not Node.objects.filter(id="gpu-it").exists(), "SIGTERM deregisters the node"


def test_the_agent_drains_and_reloads_a_managed_engine_and_rolls_back_a_failed_reload(live_server, tmp_path):
    token = issue_token("ops", Role.OPERATOR).value
    models = tmp_path / "models"
    models.mkdir()
    for name in ("m1", "m2"):
        (models / f"{name}.bin").write_bytes(b"weights")
    for name in ("m2", "m3"):
        CatalogModel.objects.create(id=name)
    config = write_config(
        tmp_path / "node.toml",
        url=live_server.url,
        token=token,
        models_dir=models,
        pools=[
            {
                "pool_id": "managed-1",
                "engine": "llamacpp",
                "command": MANAGED_COMMAND,
                "models": ["m1"],
                "slots": 2,
                "model_paths": {"m1": "m1.bin", "m2": "m2.bin", "m3": "m3.bin"},
                "health_timeout_s": 30,
            }
        ],
    )
    with running(manage("node_agent", "--config", str(config)), child_env(tmp_path), tmp_path / "agent.log"):
        first = wait_until(lambda: (p := pool_state("managed-1")) and p.ready and p, what="managed pool ready")
        old_url = first.engine_url
        assert httpx.get(f"{old_url}/props").json()["model_path"] == "m1"

        # drain: desired state goes out in the heartbeat answer, the agent reports it back
        api = httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {token}"})
        assert api.post("/v2/pools/managed-1/drain", json={}).status_code == 202
        wait_until(lambda: pool_state("managed-1").draining, what="agent reports draining")
        assert api.post("/v2/pools/managed-1/undrain").status_code == 202

        # reload: a new engine process with the new model, then the switch
        assert api.post("/v2/pools/managed-1/reload", json={"new_model_ref": "m2"}).status_code == 202
        wait_until(lambda: pool_state("managed-1").reload_state == "succeeded", timeout_s=40, what="reload")
        reloaded = pool_state("managed-1")
        assert reloaded.model_refs == ["m2"]
        assert reloaded.engine_url != old_url
        assert httpx.get(f"{reloaded.engine_url}/props").json()["model_path"] == "m2"
        wait_until(lambda: _down(old_url), timeout_s=40, what="the old engine stopped")

        # a failed reload (no model file) keeps the current engine serving
        assert api.post("/v2/pools/managed-1/reload", json={"new_model_ref": "m3"}).status_code == 202
        wait_until(lambda: pool_state("managed-1").reload_state == "failed", timeout_s=40, what="reload failure")
        failed = pool_state("managed-1")
        assert "m3" in failed.reload_error
        assert failed.model_refs == ["m2"]
        assert failed.engine_url == reloaded.engine_url
        assert httpx.get(f"{failed.engine_url}/health").status_code == 200
        health = api.get("/v2/pools/managed-1/health").json()
        assert health["reload"]["state"] == "failed"
        assert health["models"] == ["m2"]


def test_the_agent_backs_off_until_the_control_plane_is_up_and_re_registers_after_deregistration(live_server, tmp_path):
    token = issue_token("ops", Role.OPERATOR).value
    with run_fake_engine("llamacpp", slots=1) as engine:
        pools = [{"pool_id": "ext-2", "engine": "llamacpp", "engine_url": engine.url, "models": ["m1"], "slots": 1}]
        down = write_config(tmp_path / "down.toml", url="http://127.0.0.1:9", token=token, pools=pools)
        with running(manage("node_agent", "--config", str(down)), child_env(tmp_path), tmp_path / "down.log") as agent:
            wait_until(lambda: "agent.control_plane_error" in (tmp_path / "down.log").read_text(), what="backoff")
            assert agent.poll() is None, "an unreachable control plane does not stop the agent"

        up = write_config(tmp_path / "up.toml", url=live_server.url, token=token, pools=pools)
        with running(manage("node_agent", "--config", str(up)), child_env(tmp_path), tmp_path / "up.log"):
            wait_until(lambda: Node.objects.filter(id="gpu-it", status=NodeStatus.ONLINE).exists(), what="online")
            Node.objects.filter(id="gpu-it").delete()
            wait_until(lambda: Node.objects.filter(id="gpu-it").exists(), what="re-registered after a 404")


def _down(url: str) -> bool:
    try:
        httpx.get(f"{url}/health", timeout=0.5)
    except httpx.HTTPError:
        return True
    return False
