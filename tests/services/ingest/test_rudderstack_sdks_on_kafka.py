"""RudderStack's own SDKs, Python and Node, at their default settings and pointed at a
real ``milepost ingest`` process on real Kafka and PostgreSQL: their calls arrive on
``milepost.events``, identify traits included."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest
from rudderstack.analytics.client import Client

from shared.contracts import EventType
from tests.availability import unavailable
from tests.processes import RunningServer
from tests.services.ingest.conftest import end_offsets, read_from, synchronous

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

NODE_SDKS = Path(__file__).with_name("node")
"""RudderStack's Node SDK, as ``make node-sdks`` installs it from the package-lock.json."""


def test_the_python_sdk_delivers_identify_traits_from_context_traits(
    server: RunningServer, workspace: tuple[str, str], kafka_bootstrap: str
) -> None:
    workspace_id, write_key = workspace
    start = asyncio.run(end_offsets(kafka_bootstrap))
    errors: list[object] = []
    client = synchronous(Client, write_key, server.url, errors)
    client.identify("r-1", {"email": "ada@acme.io", "role": "admin"}, context={"groupId": "acme"})
    client.track("r-1", "Order Placed", {"amount": 120}, context={"groupId": "acme"})
    assert not errors

    found = asyncio.run(read_from(kafka_bootstrap, start, f"{workspace_id}/".encode(), 2))
    by_type = {event.type: (key, event) for key, event in found}
    identify_key, identify = by_type[EventType.IDENTIFY]
    assert identify_key == f"{workspace_id}/a/acme".encode()
    assert identify.context["traits"] == {"email": "ada@acme.io", "role": "admin"}
    assert identify.traits == {"email": "ada@acme.io", "role": "admin"}
    assert identify.context["library"]["name"] == "analytics-python"
    assert by_type[EventType.TRACK][1].properties == {"amount": 120}


def test_the_node_sdk_delivers_its_gzipped_form_urlencoded_batches(
    server: RunningServer, workspace: tuple[str, str], kafka_bootstrap: str
) -> None:
    node = shutil.which("node")
    if node is None or not (NODE_SDKS / "node_modules" / "@rudderstack").is_dir():
        unavailable("node or RudderStack's Node SDK is missing: run `make node-sdks`")
    workspace_id, write_key = workspace
    start = asyncio.run(end_offsets(kafka_bootstrap))
    sent = subprocess.run(  # noqa: S603 - node running the test's own script
        [node, str(NODE_SDKS / "send.js"), write_key, server.url, "globex"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert sent.returncode == 0, sent.stdout + sent.stderr

    found = asyncio.run(read_from(kafka_bootstrap, start, f"{workspace_id}/".encode(), 2))
    by_type = {event.type: (key, event) for key, event in found}
    assert set(by_type) == {EventType.IDENTIFY, EventType.TRACK}
    identify_key, identify = by_type[EventType.IDENTIFY]
    assert identify_key == f"{workspace_id}/a/globex".encode()
    assert identify.traits == {"email": "ada@acme.io", "role": "admin"}
    assert identify.context["library"]["name"] == "analytics-node"
    track = by_type[EventType.TRACK][1]
    assert (track.event, track.properties, track.account_id) == (
        "Order Placed",
        {"amount": 120},
        "globex",
    )
