"""A real Chroma server (`chroma run`) in a subprocess, for the integration tests."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"
HEARTBEAT_PATH = "/api/v2/heartbeat"
STARTUP_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
POLL_INTERVAL_S = 0.1
HEARTBEAT_TIMEOUT_S = 1.0
# Another process may take the free port between our probe and the server's bind.
PORT_ATTEMPTS = 3
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# A proxy from the environment must never stand between a test and 127.0.0.1.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@contextlib.contextmanager
def running_server(workdir: Path) -> Iterator[ChromaServer]:
    """A started server for a test (which fails, quoting the server, if it cannot start)."""
    import pytest

    server = ChromaServer(workdir)
    try:
        server.start()
    except ChromaServerError as exc:
        pytest.fail(f"could not start the Chroma server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


class ChromaServerError(RuntimeError):
    """The server could not be started; the message carries its output."""


def chroma_executable() -> str:
    """The `chroma` CLI of this interpreter's environment, else the one on PATH."""
    beside = Path(sys.executable).parent / "chroma"
    if beside.exists():
        return str(beside)
    found = shutil.which("chroma")
    if found is None:
        raise ChromaServerError(f"no `chroma` executable next to {sys.executable} or on PATH")
    return found


def free_port(host: str = HOST) -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class ChromaServer:
    """`chroma run --path DATA --host 127.0.0.1 --port PORT`, started and stopped by the caller.

    Its output goes to a log file (a pipe nobody reads could fill and stall the server) and is
    quoted in full when it fails to start.
    """

    def __init__(self, workdir: Path, host: str = HOST) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.log_path = workdir / "chroma-server.log"
        self.host = host
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Start the server and wait until its heartbeat answers.

        Raises:
            ChromaServerError: it exited or did not answer within `timeout` seconds.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        failure = ""
        for _ in range(PORT_ATTEMPTS):
            self.port = free_port(self.host)
            self._spawn()
            failure = self._wait_until_up(timeout)
            if not failure:
                return
            self.stop()
            if "address already in use" not in failure.lower():
                break
        raise ChromaServerError(failure)

    def restart(self, *, lose_data: bool = False, timeout: float = STARTUP_TIMEOUT_S) -> None:
        """Stop the server and start it again on the same port (clients keep their address).

        `lose_data`: it comes back empty, as a server whose volume was lost.
        """
        self.stop()
        if lose_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        deadline = time.monotonic() + timeout
        while True:
            self._spawn()
            failure = self._wait_until_up(max(1.0, deadline - time.monotonic()))
            if not failure:
                return
            self.stop()
            if "address already in use" not in failure.lower() or time.monotonic() > deadline:
                raise ChromaServerError(failure)
            time.sleep(POLL_INTERVAL_S)  # the old socket is still being released

    def _spawn(self) -> None:
        env = {**os.environ, "ANONYMIZED_TELEMETRY": "False", "NO_COLOR": "1"}
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                [
                    chroma_executable(),
                    "run",
                    "--path",
                    str(self.data_dir),
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # so that stop() can signal anything it spawned
            )

    def _wait_until_up(self, timeout: float) -> str:
        """'' once the heartbeat answers, else why the server is not up (with its output)."""
        assert self._process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                return f"chroma server exited with status {code} before answering:\n{self.output()}"
            if self.heartbeat():
                return ""
            time.sleep(POLL_INTERVAL_S)
        return (
            f"chroma server on {self.url} did not answer {HEARTBEAT_PATH} within "
            f"{timeout:.0f} s:\n{self.output()}"
        )

    def heartbeat(self) -> bool:
        """Whether the server answers its heartbeat now."""
        try:
            with _NO_PROXY.open(self.url + HEARTBEAT_PATH, timeout=HEARTBEAT_TIMEOUT_S) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def output(self) -> str:
        """What the server printed so far, without colour codes."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no output)"
        return _ANSI.sub("", text).strip() or "(no output)"

    def stop(self) -> None:
        """Terminate the server, and kill it if it does not exit in time."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_S)

    def __enter__(self) -> ChromaServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    """Signal the server's own process group (it was started in a new session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
