"""Start Milepost's real processes (``milepost run``, ``milepost ingest``) for tests."""

from __future__ import annotations

import os
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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


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
    server = start(command, env, log)
    try:
        yield server
    finally:
        stop(server)


def start(
    command: str, env: Mapping[str, str], log: Path, *, port: int | None = None
) -> RunningServer:
    """``milepost COMMAND`` on ``port`` (a free one by default), ready; its output appended
    to ``log``. The caller stops it (:func:`stop`)."""
    port = port or free_port()
    full_env = {**os.environ, "MILEPOST_PORT": str(port), "MILEPOST_LOG_LEVEL": "WARNING", **env}
    with log.open("ab") as output:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [MILEPOST, command], env=full_env, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return RunningServer(url, process)


def stop(server: RunningServer) -> None:
    """TERM, then KILL after 20 s."""
    server.process.terminate()
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
