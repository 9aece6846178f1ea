"""Starting the processes a benchmark measures: orchestratord, engines, the LiteLLM proxy.

Everything is throwaway: orchestratord runs on a fresh SQLite install in a
temporary folder, engines on free ports, and every process is stopped on exit.
`Proc` reads a process's CPU time and memory from /proc, which is how the
benchmarks charge CPU per token and memory per stream to one process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout_s: float = 60.0, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with status {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout_s} s")


@dataclass
class Proc:
    """A running process, for CPU and memory readings."""

    pid: int

    def cpu_s(self) -> float:
        """User + system CPU seconds used so far (its threads included)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def rss_bytes(self) -> int:
        return int(Path(f"/proc/{self.pid}/statm").read_text().split()[1]) * PAGE_SIZE


@contextmanager
def process(
    argv: list[str], env: dict[str, str] | None = None, log: Path | None = None, cwd: Path = ROOT
) -> Iterator[subprocess.Popen[bytes]]:
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]


@dataclass
class Engine:
    url: str
    proc: Proc


@contextmanager
def fake_engine(protocol: str = "openai", **options: object) -> Iterator[Engine]:
    port = free_port()
    argv = [PYTHON, "manage.py", "fake_engine", "--protocol", protocol, "--port", str(port)]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    with process(argv) as proc:
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/health", proc=proc)
        yield Engine(url, Proc(proc.pid))


@contextmanager
def llama_server(slots: int = 8, ctx: int = 512) -> Iterator[Engine]:
    """The real llama-server on the tiny GGUF of the test suite (built and cached on first use)."""
    from tests.support.llama import make_tiny_gguf, run_llama_server

    with tempfile.TemporaryDirectory(prefix="orchd-bench-gguf-") as folder:
        model = make_tiny_gguf(Path(folder) / "tiny.gguf", seed=0)
        with run_llama_server(model, slots=slots, ctx=ctx) as server:
            yield Engine(server.url, Proc(server.process.pid))


@dataclass
class Orchestrator:
    url: str
    token: str
    proc: Proc
    server: str


SERVERS = ("daphne", "uvicorn")
# uvicorn's idle connections kept this long (its default: 5 s; see `server_argv`), as LiteLLM's.
KEEP_ALIVE_S = 75


def server_argv(server: str, port: int, app: str = "orchestrator.asgi:application") -> list[str]:
    if server == "uvicorn":
        # uvloop + httptools: what `pip install uvicorn[standard]` gives, and uvicorn's fast path.
        return [
            PYTHON,
            "-m",
            "uvicorn",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            # Connections kept open longer than the bench's client keeps them idle (aiohttp: 15 s).
            # At uvicorn's default of 5 s, a POST sent just as uvicorn closed its idle connection
            # failed ("Server disconnected": aiohttp sends only idempotent requests again), where
            # daphne, which closes no idle connection, never did.
            "--timeout-keep-alive",
            str(KEEP_ALIVE_S),
            app,
        ]
    # As `manage.py run` starts it: requests are logged by the middleware, not by daphne.
    return [
        PYTHON,
        "-m",
        "daphne",
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        "--access-log",
        os.devnull,
        app,
    ]


# Settings every benchmark install gets: no abandonment (clients attach at once anyway,
# but the admission benchmark never attaches), and a queue big enough that an
# admission burst measures admission, not 429s. Everything else is the default,
# INFO logs (to /dev/null here) included.
BENCH_ENV = {
    "ORCHD_ATTACH_TIMEOUT_S": "0",
    "ORCHD_DETACH_GRACE_S": "0",
    "ORCHD_ADMISSION_CAPACITY": "1000000",
}


@contextmanager
def orchestrator(
    server: str = "daphne", log: Path | None = None, tree: Path = ROOT, env_extra: dict[str, str] | None = None
) -> Iterator[Orchestrator]:
    """A fresh install on a temporary SQLite database, served by daphne or uvicorn.

    `tree` is the checkout whose code runs (another one than this, to compare versions);
    `env_extra` may name another database (`scale_out_env`).
    """
    with tempfile.TemporaryDirectory(prefix="orchd-bench-") as data_dir:
        # Multiprocess metrics, as `manage.py run` sets them up.
        env = dict(os.environ, ORCHD_DATA_DIR=data_dir, ORCHD_METRICS_DIR=f"{data_dir}/metrics", **BENCH_ENV)
        for name in ("DATABASE_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR", "ORCHD_LOG_LEVEL"):
            env.pop(name, None)
        env.update(env_extra or {})
        subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=tree, env=env, check=True)
        token = subprocess.run(
            [PYTHON, "manage.py", "create_token", "--role", "operator", "--name", "bench"],
            cwd=tree,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        port = free_port()
        with process(server_argv(server, port), env, log, cwd=tree) as proc:
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/healthz", proc=proc)
            yield Orchestrator(url, token, Proc(proc.pid), server)


POSTGRES = "postgres://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379"


def fresh_database(name: str) -> str:
    """The URL of PostgreSQL database `orchd_bench_<name>`, dropped and created anew."""
    database = f"orchd_bench_{name}"
    for statement in (f"DROP DATABASE IF EXISTS {database} WITH (FORCE)", f"CREATE DATABASE {database}"):
        subprocess.run(["psql", f"{POSTGRES}/postgres", "-q", "-c", statement], check=True)
    return f"{POSTGRES}/{database}"


def scale_out_env(name: str, index: int) -> dict[str, str]:
    """Settings for a fresh PostgreSQL database and an empty Redis database (the scale-out mode)."""
    import redis

    redis_url = f"{REDIS}/{12 + index}"
    redis.Redis.from_url(redis_url).flushdb()
    return {"DATABASE_URL": fresh_database(name), "REDIS_URL": redis_url}


def register_pool(
    orch: Orchestrator,
    engine_url: str,
    *,
    engine: str = "openai",
    slots: int = 8,
    model: str = "bench-model",
    pool_id: str = "bench-pool",
) -> None:
    """Register a node with one pool and mark it ready with a heartbeat."""
    headers = {"Authorization": f"Bearer {orch.token}"}
    spec = {"pool_id": pool_id, "engine": engine, "engine_url": engine_url, "models": [model], "slots_total": slots}
    body = {"node_id": f"node-{pool_id}", "pools": [spec]}
    httpx.post(f"{orch.url}/v2/nodes/register", json=body, headers=headers).raise_for_status()
    beat = {"pools": [{"pool_id": pool_id, "ready": True, "slots_total": slots, "slots_free": slots}]}
    httpx.post(f"{orch.url}/v2/nodes/node-{pool_id}/heartbeat", json=beat, headers=headers).raise_for_status()


# --- LiteLLM ------------------------------------------------------------------------------------

LITELLM_VENV = ROOT / "bench" / ".venv-litellm"
LITELLM_REQUIREMENT = "litellm[proxy]"


def ensure_litellm() -> Path:
    """The `litellm` command of its own virtualenv under bench/ (created on first use; not a project dependency)."""
    command = LITELLM_VENV / "bin" / "litellm"
    if not command.is_file():
        print(f"installing {LITELLM_REQUIREMENT} into {LITELLM_VENV} (first run only)", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True)
        pip = [str(LITELLM_VENV / "bin" / "pip"), "install", "-q", LITELLM_REQUIREMENT]
        subprocess.run(pip, check=True)
    return command


def litellm_version() -> str:
    python = LITELLM_VENV / "bin" / "python"
    script = "import importlib.metadata as m; print(m.version('litellm'))"
    return subprocess.run([str(python), "-c", script], capture_output=True, text=True, check=True).stdout.strip()


@dataclass
class Proxy:
    url: str
    key: str
    proc: Proc


@contextmanager
def litellm_proxy(engine_v1_url: str, model: str = "bench-model") -> Iterator[Proxy]:
    """The LiteLLM proxy with one model routed to an OpenAI-compatible `/v1` of an engine, offline."""
    command = ensure_litellm()
    key = "sk-bench-" + os.urandom(12).hex()  # throwaway master key, valid for this run only
    with tempfile.TemporaryDirectory(prefix="orchd-bench-litellm-") as folder:
        config = Path(folder) / "config.yaml"
        config.write_text(
            "model_list:\n"
            f"  - model_name: {model}\n"
            "    litellm_params:\n"
            # text-completion-openai: relay /v1/completions as is (plain `openai/` turns it into chat).
            f"      model: text-completion-openai/{model}\n"
            f"      api_base: {engine_v1_url}\n"
            "      api_key: none\n"
            "general_settings:\n"
            f"  master_key: {key}\n"
        )
        port = free_port()
        env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR", LITELLM_MASTER_KEY=key)
        argv = [str(command), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
        argv += ["--telemetry", "False", "--num_workers", "1"]
        argv += ["--keepalive_timeout", str(KEEP_ALIVE_S)]  # it runs uvicorn too (`server_argv`)
        with process(argv, env, Path(folder) / "litellm.log") as proc:
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/health/liveliness", timeout_s=120, proc=proc)
            yield Proxy(url, key, Proc(proc.pid))
