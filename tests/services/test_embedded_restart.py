"""Embedded mode keeps what it acknowledged: the real ``milepost run``, killed (SIGKILL) or
stopped (SIGTERM) while events pour in and started again, applies every event it answered
2xx to exactly once, and fires no trigger twice; with its bus file gone it refuses to start.

Each of ``ACCOUNTS`` accounts gets ``PINGS`` "Ping" events, and a growth path published for
the test has one node per ping (``count("Ping") >= k``), so each applied ping completes one
node, and the completions' causes are the applied events: a lost event leaves a node open,
a doubled one completes a node with a cause seen already. The request in flight at the
stop has an unknown outcome and is not sent again (its events may or may not arrive).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.contracts.events import event_id_for
from tests.processes import (
    MILEPOST,
    RunningServer,
    free_port,
    milepost,
    start_server,
    stop_server,
)

pytestmark = pytest.mark.timeout(300)

ACCOUNTS = 60
PINGS = 20
PER_REQUEST = 12
STOP_AFTER = 40
"""Requests answered 2xx before the process is stopped."""
ADMIN_TOKEN = "restart-test-admin-token"
PATH_ID = "restart-counter"
SETTLE_SECONDS = 120


def _path_source() -> str:
    nodes = "\n".join(
        f"      - {{id: ping_{k}, name: Ping {k}, notify: [admin],"
        f" complete_when: 'count(\"Ping\") >= {k}'}}"
        for k in range(1, PINGS + 1)
    )
    return (
        f"id: {PATH_ID}\nname: Restart counter\nbusiness_type: service\n"
        'enrol_when: event == "Ping"\nstages:\n'
        f"  - id: counting\n    name: Counting\n    nodes:\n{nodes}\n"
        "  - id: done\n    name: Done\n"
    )


def _batches() -> list[list[dict[str, Any]]]:
    """Every account's pings in rounds, so each request carries several accounts."""
    calls = [
        {
            "type": "track",
            "messageId": f"acct-{account}-ping-{k}",
            "userId": f"user-{account}",
            "event": "Ping",
            "context": {"groupId": f"acct-{account}"},
        }
        for k in range(1, PINGS + 1)
        for account in range(ACCOUNTS)
    ]
    return [calls[i : i + PER_REQUEST] for i in range(0, len(calls), PER_REQUEST)]


@dataclass
class Sender:
    """Sends batches in order until one gets no answer; what each request came to."""

    batches: list[list[dict[str, Any]]]
    acknowledged: list[int] = field(default_factory=list)
    unknown: list[int] = field(default_factory=list)

    def send(self, server: RunningServer, key: str, first: int) -> int:
        """Send from batch ``first`` on; the index of the first one not acknowledged."""
        with httpx.Client(base_url=server.url, auth=(key, ""), timeout=30) as client:
            for index in range(first, len(self.batches)):
                try:
                    answer = client.post("/v1/batch", json={"batch": self.batches[index]})
                except httpx.HTTPError:
                    self.unknown.append(index)
                    return index + 1
                if not answer.is_success:
                    self.unknown.append(index)
                    return index + 1
                self.acknowledged.append(index)
        return len(self.batches)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        "MILEPOST_DATA_DIR": str(tmp_path / "data"),
        "MILEPOST_ENGINE_ADMIN_TOKEN": ADMIN_TOKEN,
        "MILEPOST_ENGINE_CATALOG_REFRESH_SECONDS": "0.2",
    }


@pytest.fixture
def servers(env: dict[str, str], tmp_path: Path) -> Iterator[list[RunningServer]]:
    """The servers a test starts, stopped at its end."""
    started: list[RunningServer] = []
    yield started
    for server in started:
        if server.process.poll() is None:
            stop_server(server, signal.SIGKILL)


def _start(env: dict[str, str], tmp_path: Path, servers: list[RunningServer]) -> RunningServer:
    server = start_server("run", env, tmp_path / "run.log")
    servers.append(server)
    return server


def _admin(server: RunningServer) -> httpx.Client:
    return httpx.Client(
        base_url=f"{server.url}/api/engine/workspaces/demo",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=30,
    )


def _send_and_stop(server: RunningServer, key: str, sender: Sender, how: signal.Signals) -> int:
    """Send in a thread; once ``STOP_AFTER`` requests were acknowledged, stop the server
    with ``how`` mid-stream. The index of the first batch to send after the restart."""
    resume: list[int] = []
    thread = threading.Thread(target=lambda: resume.append(sender.send(server, key, 0)))
    thread.start()
    while len(sender.acknowledged) < STOP_AFTER and thread.is_alive():
        time.sleep(0.005)
    stop_server(server, how)
    thread.join()
    assert sender.unknown, "the server stopped after every request was answered"
    return resume[0]


def _completions(server: RunningServer) -> dict[int, list[dict[str, Any]]]:
    """Per account, its node completions on the test path."""
    found: dict[int, list[dict[str, Any]]] = {}
    with _admin(server) as admin:
        for account in range(ACCOUNTS):
            answer = admin.get(
                f"/accounts/acct-{account}/timeline", params={"path_id": PATH_ID, "limit": 500}
            )
            items = answer.json()["items"] if answer.status_code == 200 else []
            found[account] = [t for t in items if t["kind"] == "node_completed"]
    return found


def _expected(sender: Sender, workspace_id: str) -> tuple[dict[int, set[str]], dict[int, set[str]]]:
    """Per account, the event ids acknowledged and those of unknown outcome."""
    acknowledged: dict[int, set[str]] = {a: set() for a in range(ACCOUNTS)}
    unknown: dict[int, set[str]] = {a: set() for a in range(ACCOUNTS)}
    for indices, into in ((sender.acknowledged, acknowledged), (sender.unknown, unknown)):
        for index in indices:
            for call in sender.batches[index]:
                account = int(call["context"]["groupId"].removeprefix("acct-"))
                into[account].add(event_id_for(workspace_id, call["messageId"]))
    return acknowledged, unknown


def _settled(server: RunningServer, acknowledged: dict[int, set[str]]) -> dict[int, list[Any]]:
    """The completions once every acknowledged event has been applied (or the time is up)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        completions = _completions(server)
        causes = {a: {t["cause_id"] for t in found} for a, found in completions.items()}
        if all(acknowledged[a] <= causes[a] for a in acknowledged) or time.monotonic() > deadline:
            return completions
        time.sleep(1)


def _publish_path(server: RunningServer, key: str) -> None:
    """Publish the test path, and wait until the engine applies it (to a probe account)."""
    with _admin(server) as admin:
        published = admin.post("/paths", json={"source": _path_source(), "source_name": "t"})
        assert published.status_code == 201, published.text
        deadline = time.monotonic() + SETTLE_SECONDS
        while time.monotonic() < deadline:
            probe = {"userId": "probe", "event": "Ping", "context": {"groupId": "probe"}}
            httpx.post(f"{server.url}/v1/track", json=probe, auth=(key, ""), timeout=30)
            if admin.get("/accounts/probe").status_code == 200:
                return
            time.sleep(0.2)


def _workspace_id(env: dict[str, str]) -> str:
    listing = milepost("workspace", "list", env=env).stdout
    (line,) = [line for line in listing.splitlines() if line.startswith("demo\t")]
    return line.split("\t")[1]


def _crash_and_restart(
    how: signal.Signals, env: dict[str, str], tmp_path: Path, servers: list[RunningServer]
) -> RunningServer:
    """Publish the path, send, stop with ``how`` mid-stream, restart, send the rest, and
    check every acknowledged event was applied once. The server that is left running."""
    server = _start(env, tmp_path, servers)
    key = (tmp_path / "data" / "demo-write-key").read_text().strip()
    _publish_path(server, key)
    sender = Sender(_batches())
    resume = _send_and_stop(server, key, sender, how)

    server = _start(env, tmp_path, servers)
    assert sender.send(server, key, resume) == len(sender.batches)
    assert not sender.unknown[1:], "a request after the restart went unanswered"

    acknowledged, unknown = _expected(sender, _workspace_id(env))
    completions = _settled(server, acknowledged)
    lost = {a: len(acknowledged[a] - {t["cause_id"] for t in completions[a]}) for a in acknowledged}
    assert sum(lost.values()) == 0, f"acknowledged events never applied, per account: {lost}"
    for account, found in completions.items():
        causes = [t["cause_id"] for t in found]
        assert len(causes) == len(set(causes)), f"acct-{account}: an event applied twice"
        assert set(causes) <= acknowledged[account] | unknown[account]
    trigger_ids = [t["transition_id"] for found in completions.values() for t in found]
    assert len(trigger_ids) == len(set(trigger_ids)), "a trigger fired twice"
    return server


def test_events_acknowledged_before_a_sigkill_are_applied_once_and_a_lost_bus_is_refused(
    env: dict[str, str], tmp_path: Path, servers: list[RunningServer]
) -> None:
    server = _crash_and_restart(signal.SIGKILL, env, tmp_path, servers)
    stop_server(server)
    for file in (tmp_path / "data").glob("bus.db*"):
        file.unlink()

    refused = subprocess.run(  # noqa: S603 - our own console script
        [MILEPOST, "run"],
        env={**os.environ, **env, "MILEPOST_PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert refused.returncode == 1
    assert f"the bus file {tmp_path / 'data' / 'bus.db'} disagrees" in refused.stderr
    assert "ends at offset 0 in the bus, but consumer group" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_events_acknowledged_before_a_sigterm_are_applied_once(
    env: dict[str, str], tmp_path: Path, servers: list[RunningServer]
) -> None:
    _crash_and_restart(signal.SIGTERM, env, tmp_path, servers)
