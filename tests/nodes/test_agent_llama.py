"""The node agent driving a real llama.cpp `llama-server` with tiny GGUF models."""

from __future__ import annotations

import httpx
import pytest

from catalog.models import CatalogModel
from nodes.models import Node, NodeStatus
from orchestrator.auth.models import Role
from orchestrator.auth.services import issue_token
from pools.models import Pool
from tests.nodes.test_agent_integration import write_config
from tests.support.processes import child_env, manage, running, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def pool_state(pool_id):
    return Pool.objects.filter(id=pool_id).first()


def test_the_agent_runs_reloads_and_rolls_back_a_real_llama_server(
    live_server, tmp_path, llama_server_binary, tiny_model_factory
):
    token = issue_token("ops", Role.OPERATOR).value
    models = tmp_path / "models"
    models.mkdir()
    for seed, name in ((0, "tiny-a"), (1, "tiny-b")):
        (models / f"{name}.gguf").write_bytes(tiny_model_factory(seed=seed, name=name).read_bytes())
    for name in ("tiny-b", "tiny-missing"):
        CatalogModel.objects.create(id=name)
    command = (
        f"{llama_server_binary} --model {{model_path}} --host {{host}} --port {{port}} --parallel {{slots}} "
        "--ctx-size {ctx_total} --slots --no-webui --no-warmup --threads 1 --threads-batch 1"
    )
    config = write_config(
        tmp_path / "node.toml",
        url=live_server.url,
        token=token,
        models_dir=models,
        pools=[
            {
                "pool_id": "llama-1",
                "engine": "llamacpp",
                "command": command,
                "models": ["tiny-a"],
                "slots": 2,
                "ctx_max": 512,
                "model_paths": {"tiny-a": "tiny-a.gguf", "tiny-b": "tiny-b.gguf", "tiny-missing": "nope.gguf"},
                "health_timeout_s": 60,
            }
        ],
    )
    api = httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {token}"})
    with running(manage("node_agent", "--config", str(config)), child_env(tmp_path), tmp_path / "agent.log"):
        # registered, with slots read from the engine's /slots
        pool = wait_until(lambda: (p := pool_state("llama-1")) and p.ready and p, timeout_s=60, what="llama pool ready")
        assert Node.objects.get(id="gpu-it").status == NodeStatus.ONLINE
        assert (pool.slots_total, pool.slots_free) == (2, 2)
        slots = httpx.get(f"{pool.engine_url}/slots").json()
        assert len(slots) == 2
        first_url = pool.engine_url
        assert httpx.get(f"{first_url}/props").json()["model_path"].endswith("tiny-a.gguf")

        # a reload really restarts the engine with the other model
        assert api.post("/v2/pools/llama-1/reload", json={"new_model_ref": "tiny-b"}).status_code == 202
        wait_until(lambda: pool_state("llama-1").reload_state == "succeeded", timeout_s=90, what="reload")
        reloaded = pool_state("llama-1")
        assert reloaded.engine_url != first_url
        assert httpx.get(f"{reloaded.engine_url}/props").json()["model_path"].endswith("tiny-b.gguf")
        completion = httpx.post(f"{reloaded.engine_url}/completion", json={"prompt": "the", "n_predict": 4}).json()
        assert completion["tokens_predicted"] == 4

        # a reload to a missing model file fails and the running engine keeps serving
        assert api.post("/v2/pools/llama-1/reload", json={"new_model_ref": "tiny-missing"}).status_code == 202
        wait_until(lambda: pool_state("llama-1").reload_state == "failed", timeout_s=60, what="failed reload")
        failed = pool_state("llama-1")
        assert "nope.gguf" in failed.reload_error
        assert failed.engine_url == reloaded.engine_url
        assert failed.model_refs == ["tiny-b"]
        assert httpx.get(f"{failed.engine_url}/health").status_code == 200
        assert httpx.get(f"{failed.engine_url}/props").json()["model_path"].endswith("tiny-b.gguf")
