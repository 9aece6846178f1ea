"""A real llama.cpp `llama-server` for the integration tests, built once and cached outside the repo.

The binary is built from the llama.cpp sources vendored in the `llama-cpp-python` sdist on PyPI (the
only route to llama.cpp sources with no internet but package registries), CPU only, static, into

    ${ORCHD_LLAMA_CACHE:-~/.cache/orchestratord}/llama-server-<llama-cpp-python version>/llama-server

`ORCHD_LLAMA_SERVER=/path/to/llama-server` skips all that and uses the given binary.

Use:
    python -m tests.support.llama build      # build (or find) the binary, print its path
    python -m tests.support.llama model OUT  # write a tiny model to OUT
    python -m tests.support.llama serve      # run a server on a tiny model until Ctrl-C

As a pytest plugin (`pytest_plugins = ["tests.support.llama"]`) it provides the fixtures
`llama_server_binary` (session), `tiny_model_factory` (session) and `llama_server` (function), and
builds the binary after collection, before the first test, when a collected test needs it, so the
4-5 minute first build is not charged to one test's timeout.

PYTEST_DONT_REWRITE (nothing here relies on assertion rewriting; test modules import this file
before registering it as a plugin, which would otherwise warn).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tests.support.gguf_model import make_tiny_gguf

__all__ = [
    "LLAMA_CPP_PYTHON_VERSION",
    "LlamaBuildError",
    "LlamaServer",
    "ensure_llama_server",
    "free_port",
    "llama_server",
    "llama_server_binary",
    "make_tiny_gguf",
    "run_llama_server",
    "tiny_model_factory",
]

# Newest llama-cpp-python whose vendored llama.cpp builds here (llama.cpp 0.5.0-dev, ggml 0.25.3).
LLAMA_CPP_PYTHON_VERSION = "0.3.36"

CMAKE_OPTIONS = (
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",  # one self-contained binary
    "-DLLAMA_BUILD_SERVER=ON",
    "-DLLAMA_BUILD_TOOLS=ON",  # the server lives under tools/
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_APP=OFF",
    "-DLLAMA_BUILD_UI=OFF",  # no npm build of the web UI...
    "-DLLAMA_USE_PREBUILT_UI=OFF",  # ...and no download of a prebuilt one (no internet)
    "-DLLAMA_OPENSSL=OFF",  # (LLAMA_CURL is gone in this version: downloads use cpp-httplib)
    # Portable x86-64-v3 (AVX2/FMA/F16C) rather than -march=native: a CI cache restored on
    # another runner must not die of SIGILL. Speed is irrelevant for the tiny models.
    "-DGGML_NATIVE=OFF",
    "-DGGML_OPENMP=OFF",  # plain threads: no libgomp at run time, no OpenMP spin-waiting
    "-DGGML_CCACHE=OFF",
)


class LlamaBuildError(RuntimeError):
    """llama-server could not be built or found."""


def _log(msg: str) -> None:
    print(f"[llama-server] {msg}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    root = os.environ.get("ORCHD_LLAMA_CACHE") or str(Path.home() / ".cache" / "orchestratord")
    return Path(root).expanduser() / f"llama-server-{LLAMA_CPP_PYTHON_VERSION}"


def _check_toolchain() -> None:
    missing = []
    if shutil.which("cmake") is None:
        missing.append("cmake")
    cxx = os.environ.get("CXX")
    if not (cxx and shutil.which(cxx)) and not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
        missing.append("a C++17 compiler (g++ or clang++)")
    cc = os.environ.get("CC")
    if not (cc and shutil.which(cc)) and not any(shutil.which(c) for c in ("cc", "gcc", "clang")):
        missing.append("a C compiler (gcc or clang)")
    if not any(shutil.which(m) for m in ("make", "ninja")):
        missing.append("make or ninja")
    if missing:
        raise LlamaBuildError(
            "cannot build llama-server: missing " + ", ".join(missing) + ". Install them (Debian: "
            "`apt-get install cmake build-essential`) or point ORCHD_LLAMA_SERVER at an existing binary."
        )


def _run(cmd: Sequence[str], *, cwd: Path | None = None) -> None:
    """Run `cmd`, echoing its output to stderr; on failure raise with the output's tail."""
    _log("$ " + " ".join(cmd))
    tail: collections.deque[str] = collections.deque(maxlen=60)
    try:
        proc = subprocess.Popen(
            cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
    except OSError as exc:
        raise LlamaBuildError(f"cannot run {cmd[0]}: {exc}") from exc
    assert proc.stdout is not None
    with proc:
        for line in proc.stdout:
            tail.append(line)
            sys.stderr.write(line)
        sys.stderr.flush()
    if proc.returncode != 0:
        raise LlamaBuildError(f"command failed with exit status {proc.returncode}: {' '.join(cmd)}\n" + "".join(tail))


def _find_llama_cpp(root: Path) -> Path:
    for candidate in sorted(root.glob("*/vendor/llama.cpp")):
        if (candidate / "CMakeLists.txt").is_file() and (candidate / "tools" / "server").is_dir():
            return candidate
    raise LlamaBuildError(f"no vendor/llama.cpp with tools/server in the sdist unpacked at {root}")


def _build(target: Path) -> None:
    _check_toolchain()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="orchd-llama-build-") as tmp_name:
        tmp = Path(tmp_name)
        _log(f"downloading the llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION} sdist")
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}",
                "-d",
                str(tmp / "dl"),
            ]
        )
        sdists = sorted((tmp / "dl").glob("llama_cpp_python-*.tar.gz"))
        if not sdists:
            raise LlamaBuildError(f"pip download left no sdist in {tmp / 'dl'}")
        _log(f"unpacking {sdists[0].name}")
        with tarfile.open(sdists[0]) as tar:
            tar.extractall(tmp / "src", filter="data")
        src = _find_llama_cpp(tmp / "src")
        build = tmp / "build"
        _run(["cmake", "-S", str(src), "-B", str(build), *CMAKE_OPTIONS])
        jobs = str(max(1, min(os.cpu_count() or 1, 8)))
        _run(["cmake", "--build", str(build), "--config", "Release", "--target", "llama-server", "-j", jobs])
        built = build / "bin" / "llama-server"
        if not built.is_file():
            found = sorted(build.rglob("llama-server"))
            if not found:
                raise LlamaBuildError(f"the build finished but produced no llama-server under {build}")
            built = found[0]
        partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
        shutil.copy2(built, partial)
        partial.chmod(0o755)
        os.replace(partial, target)  # atomic: readers see no binary or a whole one
    _log(f"built {target} ({target.stat().st_size / 1e6:.1f} MB) in {time.monotonic() - started:.0f} s")


def ensure_llama_server() -> Path:
    """Return the path of a working llama-server, building and caching it on first use.

    Safe to call from several processes at once (pytest-xdist workers): one builds under a file
    lock, the others wait for it and then use its binary.
    """
    override = os.environ.get("ORCHD_LLAMA_SERVER")
    if override:
        path = Path(override).expanduser()
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise LlamaBuildError(f"ORCHD_LLAMA_SERVER={override} is not an executable file")
        return path
    directory = cache_dir()
    target = directory / "llama-server"
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".build.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log(f"another process is building llama-server into {directory}; waiting for it")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not target.is_file():  # the process we waited for may have built it
                _log(f"building llama-server (first use, ~5 min on 2 cores) into {directory}")
                _build(target)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (another process may still take it: callers retry)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LlamaServer:
    """A running llama-server. `url` has no trailing slash."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    model: Path
    slots: int
    ctx: int
    log_path: Path
    args: list[str] = field(default_factory=list)

    def log(self) -> str:
        """Everything the server has printed so far."""
        return self.log_path.read_text(errors="replace")

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 30.0)
        return httpx.Client(base_url=self.url, trust_env=False, **kwargs)


def server_args(
    binary: Path, model: Path, *, port: int, slots: int, ctx: int, threads: int, extra: Sequence[str] = ()
) -> list[str]:
    return [
        str(binary),
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--parallel",
        str(slots),
        "--ctx-size",
        str(ctx * slots),  # split evenly: each slot gets `ctx` tokens
        "--no-kv-unified",  # ...which needs per-slot KV, not one shared pool
        "--threads",
        str(threads),
        "--threads-batch",
        str(threads),
        "--threads-http",
        str(max(2, slots + 1)),
        "--slots",  # GET /slots, read by the node agent
        "--metrics",  # GET /metrics
        "--no-webui",
        "--no-warmup",
        "--cache-ram",
        "0",  # no host-memory prompt cache: outputs depend on the request only
        *extra,
    ]


def _stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "".join(path.read_text(errors="replace").splitlines(keepends=True)[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def run_llama_server(
    model: Path,
    *,
    slots: int = 2,
    ctx: int = 512,
    port: int | None = None,
    threads: int = 1,
    extra_args: Sequence[str] = (),
    binary: Path | None = None,
    startup_timeout: float = 60.0,
    log_dir: Path | None = None,
) -> Iterator[LlamaServer]:
    """Start llama-server on `model`, wait for `GET /health` to say 200, yield it, stop it.

    `ctx` is the context of each slot. With `port=None` a free port is picked (and retried if
    another process grabs it first). The server's output goes to a log file, see `.log()`: in
    `log_dir` if given (and kept), else in a temporary file deleted when the server stops.
    """
    binary = binary or ensure_llama_server()
    model = Path(model)
    if not model.is_file():
        raise FileNotFoundError(model)
    keep_log = log_dir is not None
    attempts = 1 if port is not None else 3
    server: LlamaServer | None = None
    for attempt in range(1, attempts + 1):
        chosen = port if port is not None else free_port()
        args = server_args(binary, model, port=chosen, slots=slots, ctx=ctx, threads=threads, extra=extra_args)
        log_fd, log_name = tempfile.mkstemp(prefix=f"llama-server-{chosen}-", suffix=".log", dir=log_dir)
        log_path = Path(log_name)
        with os.fdopen(log_fd, "wb") as log_file:
            process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
        candidate = LlamaServer(
            url=f"http://127.0.0.1:{chosen}",
            port=chosen,
            process=process,
            model=model,
            slots=slots,
            ctx=ctx,
            log_path=log_path,
            args=args,
        )
        try:
            healthy = _wait_healthy(candidate, startup_timeout)
        except BaseException:
            _stop(process)
            if not keep_log:
                log_path.unlink(missing_ok=True)
            raise
        if healthy:
            server = candidate
            break
        log = _tail(log_path)
        if not keep_log:
            log_path.unlink(missing_ok=True)
        if attempt < attempts and "bind" in log.lower():
            continue  # lost a race for the port: try another
        raise RuntimeError(
            f"llama-server exited with status {process.returncode} before it was healthy\n"
            f"command: {' '.join(args)}\n{log}"
        )
    assert server is not None
    try:
        yield server
    finally:
        _stop(server.process)
        if not keep_log:
            server.log_path.unlink(missing_ok=True)


def _wait_healthy(server: LlamaServer, timeout: float) -> bool:
    """True once /health is 200 from *this* process; False if it exits first; raises on timeout."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=server.url, trust_env=False, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                return False
            with contextlib.suppress(httpx.TransportError, ValueError, KeyError):
                # The model check: not another server that won the race for the port.
                if (
                    client.get("/health").status_code == 200
                    and Path(client.get("/props").json()["model_path"]) == server.model
                ):
                    return server.process.poll() is None
            time.sleep(0.05)
    raise TimeoutError(
        f"llama-server on {server.url} not healthy after {timeout:.0f} s\n"
        f"command: {' '.join(server.args)}\n{_tail(server.log_path)}"
    )


# --- pytest plugin --------------------------------------------------------------------------------

_prebuild_error: BaseException | None = None


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the binary before the first test that needs it, outside any test's timeout."""
    global _prebuild_error
    config = session.config
    if config.option.collectonly or os.environ.get("ORCHD_LLAMA_SERVER"):
        return
    if not any("llama_server_binary" in getattr(item, "fixturenames", ()) for item in session.items):
        return
    if (cache_dir() / "llama-server").is_file():
        return
    capture: Any = config.pluginmanager.getplugin("capturemanager")
    suspended = capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext()
    with suspended:
        try:
            ensure_llama_server()
        except Exception as exc:  # reported by the fixture, as a failure of the tests that need it
            _prebuild_error = exc


@pytest.fixture(scope="session")
def llama_server_binary() -> Path:
    """Path of the llama-server binary (built and cached on first use)."""
    if _prebuild_error is not None:
        pytest.fail(f"llama-server is not available: {_prebuild_error}", pytrace=False)
    try:
        return ensure_llama_server()
    except LlamaBuildError as exc:
        pytest.fail(f"llama-server is not available: {exc}", pytrace=False)


TinyModelFactory = Callable[..., Path]


@pytest.fixture(scope="session")
def tiny_model_factory(tmp_path_factory: pytest.TempPathFactory) -> TinyModelFactory:
    """`tiny_model_factory(seed=0, name="tiny", context_length=512) -> Path`: a tiny GGUF.

    Written once per argument set into a session temporary directory, as `<name>-seed<seed>.gguf`.
    """
    directory = tmp_path_factory.mktemp("gguf")
    made: dict[tuple[int, str, int], Path] = {}

    def factory(seed: int = 0, name: str = "tiny", context_length: int = 512) -> Path:
        key = (seed, name, context_length)
        if key not in made:
            suffix = "" if context_length == 512 else f"-ctx{context_length}"
            path = directory / f"{name}-seed{seed}{suffix}.gguf"
            made[key] = make_tiny_gguf(path, seed=seed, name=name, context_length=context_length)
        return made[key]

    return factory


@pytest.fixture
def llama_server(
    llama_server_binary: Path, tiny_model_factory: TinyModelFactory, tmp_path: Path
) -> Iterator[LlamaServer]:
    """A llama-server on the seed-0 tiny model with 2 slots of 512 tokens, stopped after the test.

    Its log is kept in the test's `tmp_path` (`llama_server.log()`, or look there after a failure).
    """
    model = tiny_model_factory(seed=0)
    with run_llama_server(model, slots=2, ctx=512, binary=llama_server_binary, log_dir=tmp_path) as server:
        yield server


# --- command line ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.support.llama", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("build", help="build (or find) llama-server and print its path")
    model = sub.add_parser("model", help="write a tiny GGUF model")
    model.add_argument("out", type=Path)
    model.add_argument("--seed", type=int, default=0)
    serve = sub.add_parser("serve", help="serve a tiny model until interrupted")
    serve.add_argument("--seed", type=int, default=0)
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--slots", type=int, default=2)
    args = parser.parse_args(argv)
    out: IO[str] = sys.stdout
    try:
        if args.command == "build":
            started = time.monotonic()
            path = ensure_llama_server()
            _log(f"ready in {time.monotonic() - started:.1f} s")
            print(path, file=out)
        elif args.command == "model":
            print(make_tiny_gguf(args.out, seed=args.seed), file=out)
        else:
            with tempfile.TemporaryDirectory() as tmp:
                gguf_path = make_tiny_gguf(Path(tmp) / "tiny.gguf", seed=args.seed)
                with run_llama_server(gguf_path, slots=args.slots, port=args.port) as server:
                    print(server.url, file=out, flush=True)
                    with contextlib.suppress(KeyboardInterrupt):
                        server.process.wait()
    except LlamaBuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
