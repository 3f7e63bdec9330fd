"""Start Milepost's real processes (``milepost run``, ``milepost ingest``) for tests."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

MILEPOST = str(Path(sys.executable).with_name("milepost"))
STARTUP_LIMIT_SECONDS = 60


@dataclass(frozen=True)
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]


LOW_PORTS = range(20_000, 32_768)
"""Where test servers listen: below the kernel's ephemeral ports (32768 up)."""


def free_port() -> int:
    """A port of :data:`LOW_PORTS` free on 127.0.0.1 now: the servers that tests start
    listen there, and clients' own ports never take it meanwhile."""
    for port in random.sample(LOW_PORTS, 200):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port between 20000 and 32767")


def milepost(*args: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a ``milepost`` command to completion; raises with its output when it fails."""
    result = subprocess.run(  # noqa: S603 - our own console script
        [MILEPOST, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise AssertionError(f"milepost {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


@contextmanager
def running(command: str, env: Mapping[str, str], log: Path) -> Iterator[RunningServer]:
    """Start ``milepost COMMAND`` on a free port and wait until ``/readyz`` answers 200."""
    log.write_bytes(b"")
    server = start_server(command, env, log)
    try:
        yield server
    finally:
        stop_server(server)


def start_server(
    command: str, env: Mapping[str, str], log: Path, *, port: int | None = None
) -> RunningServer:
    """``milepost COMMAND`` on ``port`` (a free one by default), its output appended to
    ``log``, once ``/readyz`` answers 200 (stopped again when it does not). The caller stops
    it (:func:`stop_server`)."""
    port = port or free_port()
    full_env = {**os.environ, "MILEPOST_PORT": str(port), "MILEPOST_LOG_LEVEL": "WARNING", **env}
    with log.open("ab") as output:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [MILEPOST, command], env=full_env, stdout=output, stderr=subprocess.STDOUT
        )
    server = RunningServer(f"http://127.0.0.1:{port}", process)
    try:
        _wait_ready(server.url, process, log)
    except BaseException:
        stop_server(server)
        raise
    return server


def stop_server(server: RunningServer, how: signal.Signals = signal.SIGTERM) -> None:
    """Send ``how`` and wait for the process to end (killing it after 20 s)."""
    server.process.send_signal(how)
    try:
        server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_LIMIT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"server not ready within {STARTUP_LIMIT_SECONDS}s:\n{log.read_text()}")
