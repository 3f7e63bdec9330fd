"""The system under test: Milepost's services as separate processes on Kafka and
PostgreSQL, and (for the restart scenarios) a private broker and cluster.

A :class:`Deployment` has a fresh database (migrated, workspace ``chaos``, both reference
paths published), fresh topics under a run-unique prefix, and runs ``milepost ingest``,
several ``milepost engine`` members in one consumer group, ``milepost scoring`` and
``milepost messaging``; a subscription sends every trigger to the webhook receiver.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from shared.bus import TopicPartition
from shared.bus.kafka import KafkaBus, KafkaOptions
from shared.bus.namespaced import NamespacedBus
from shared.contracts import TOPICS, Topic
from shared.db import create_engine
from tests.benchmarks._system import process_rss
from tests.benchmarks.engine import _Cleanup, _fresh_database, _prepare_database
from tests.benchmarks.pipeline import FAST_PATHS
from tests.processes import RunningServer, free_port, milepost, start_server, stop_server

WORKSPACE = "chaos"
REPO = Path(__file__).resolve().parents[2]
SERVICES_SH = REPO / "deploy" / "local" / "services.sh"
PRIVATE_PORTS = (20_000, 32_000)
"""Below Linux's ephemeral range (32768-), so no client socket takes them meanwhile."""
CONSUMER_GROUPS = {
    "attribution": (Topic.EVENTS,),
    "engine": (Topic.ACCOUNT_EVENTS, Topic.SCORES),
    "scoring": (Topic.ACCOUNT_EVENTS, Topic.TRIGGERS),
    "messaging": (Topic.TRIGGERS,),
    "subscriptions": (Topic.TRIGGERS,),
    "contacts": (Topic.EVENTS,),
}
PARTITIONS = {spec.topic: spec.partitions for spec in TOPICS}
SELF_REPORTED = ("_batch_retries", "_consumer_lag")
"""The metrics a process that did not settle is asked for: its rollbacks and its lag."""
OWN_WARNINGS = 6
"""A process's last warnings and errors told when a run did not settle (the bus client's
own, a flood while the broker is down, left out)."""
RETRY_SCHEDULE_S = [0.5, 1.0, 1.0, 2.0, 2.0]
"""Short retries (production waits minutes): a run must see them end, in the DLQ or sent."""
WEBHOOK_TIMEOUT_S = 1.0
CLAIM_LEASE_S = 15.0
"""A delivery claimed by a messaging process killed mid-send is due again after this long
(production: two minutes): well within the settle window, well beyond a send."""


@dataclass(frozen=True, slots=True)
class Servers:
    bootstrap: str
    server_url: str
    """A PostgreSQL URL; each run creates its own database on that server."""


class PrivateServices:
    """A Kafka broker and a PostgreSQL cluster of our own (deploy/local/services.sh with a
    state directory and ports of their own), which a scenario may stop and restart."""

    def __init__(self, root: Path, rng: random.Random) -> None:
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)  # the cluster runs as the postgres user, which must reach it
        kafka, controller, pg = _private_ports(rng, 3)
        self.env = {
            "MILEPOST_SERVICES_DIR": str(root),
            "MILEPOST_KAFKA_PORT": str(kafka),
            "MILEPOST_KAFKA_CONTROLLER_PORT": str(controller),
            "MILEPOST_PG_PORT": str(pg),
            "MILEPOST_KAFKA_KEEP_DATA": "1",
            "MILEPOST_KAFKA_JVM_OPTS": "-Xms128m -Xmx512m -XX:+UseG1GC",
            "MILEPOST_PYTHON": sys.executable,
            "MILEPOST_KAFKA_LIBS": os.environ.get(
                "MILEPOST_KAFKA_LIBS", str(REPO / ".cache" / "kafka" / "libs")
            ),
        }
        self.servers = Servers(
            f"127.0.0.1:{kafka}", f"postgresql+asyncpg://postgres@127.0.0.1:{pg}/postgres"
        )

    async def up(self) -> None:
        await self.run("kafka-up")
        await self.run("pg-up")

    async def down(self) -> None:
        await self.run("kafka-down")
        await self.run("pg-down")

    async def run(self, command: str) -> None:
        """``services.sh COMMAND``: kafka-up, kafka-down, pg-up or pg-down."""
        process = await asyncio.create_subprocess_exec(
            "bash",
            str(SERVICES_SH),
            command,
            env={**os.environ, **self.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"services.sh {command} failed:\n{output.decode()[-2000:]}")


def _private_ports(rng: random.Random, count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = rng.randrange(*PRIVATE_PORTS)
        if port not in ports and _free(port):
            ports.append(port)
    return ports


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass(slots=True)
class Deployment:
    """One run's services; ``processes`` by name (``engine-1``, ``engine-2``...)."""

    servers: Servers
    workdir: Path
    run_id: str
    receiver_url: str
    engines: int
    database_url: str = ""
    write_key: str = ""
    processes: dict[str, RunningServer] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    peak_rss: dict[str, int] = field(default_factory=dict)

    @property
    def prefix(self) -> str:
        return f"chaos-{self.run_id}."

    def group(self, name: str) -> str:
        return f"chaos-{self.run_id}-{name}"

    @property
    def env(self) -> dict[str, str]:
        return {
            "MILEPOST_BUS": "kafka",
            "MILEPOST_KAFKA_BOOTSTRAP_SERVERS": self.servers.bootstrap,
            "MILEPOST_TOPIC_PREFIX": self.prefix,
            "MILEPOST_DATABASE_URL": self.database_url,
            "MILEPOST_HOST": "127.0.0.1",
            "MILEPOST_DATA_DIR": str(self.workdir / "data"),
            "MILEPOST_MESSAGING_ADMIN_TOKEN": self.run_id,
            "MILEPOST_ATTRIBUTION_GROUP_ID": self.group("attribution"),
            "MILEPOST_ENGINE_GROUP_ID": self.group("engine"),
            "MILEPOST_SCORING_GROUP_ID": self.group("scoring"),
            "MILEPOST_MESSAGING_GROUP_ID": self.group("messaging"),
            "MILEPOST_MESSAGING_SUBSCRIPTIONS_GROUP_ID": self.group("subscriptions"),
            "MILEPOST_MESSAGING_CONTACTS_GROUP_ID": self.group("contacts"),
            "MILEPOST_MESSAGING_RETRY_SCHEDULE_SECONDS": orjson.dumps(RETRY_SCHEDULE_S).decode(),
            "MILEPOST_MESSAGING_HTTP_TIMEOUT_SECONDS": str(WEBHOOK_TIMEOUT_S),
            "MILEPOST_MESSAGING_CLAIM_LEASE_SECONDS": str(CLAIM_LEASE_S),
            **FAST_PATHS,
        }

    @property
    def names(self) -> list[str]:
        return [
            "ingest",
            *(f"engine-{n}" for n in range(1, self.engines + 1)),
            "scoring",
            "messaging",
        ]

    async def prepare(self, cleanup: _Cleanup) -> None:
        """Database, topics, workspace and its write key."""
        name = f"milepost_chaos_{self.run_id}"
        self.database_url = await _fresh_database(self.servers.server_url, name, cleanup)
        await _prepare_database(self.database_url, WORKSPACE)
        cleanup.topics.extend(f"{self.prefix}{spec.topic}" for spec in TOPICS)
        await asyncio.to_thread(milepost, "kafka", "ensure-topics", env=self.env)
        rotated = await asyncio.to_thread(milepost, "workspace", "rotate", WORKSPACE, env=self.env)
        self.write_key = rotated.stdout.strip().splitlines()[-1].strip()

    async def start_all(self) -> None:
        for name in self.names:
            await self.start(name)
        async with httpx.AsyncClient(
            base_url=self.url("messaging"),
            headers={"Authorization": f"Bearer {self.run_id}"},
            timeout=10.0,
        ) as admin:
            answer = await admin.post(
                f"/api/messaging/workspaces/{WORKSPACE}/subscriptions",
                json={"url": self.receiver_url, "description": "fault suite receiver"},
            )
        if answer.status_code not in (200, 201):
            raise RuntimeError(f"creating the subscription: {answer.status_code} {answer.text}")

    def url(self, name: str) -> str:
        return self.processes[name].url

    async def start(self, name: str) -> None:
        """Start ``name`` (on the port it had before, if any) and wait until it is ready."""
        port = self.ports.setdefault(name, free_port())
        command = name.partition("-")[0]
        log = self.workdir / f"{name}.log"
        self.processes[name] = await asyncio.to_thread(
            start_server, command, self.env, log, port=port
        )

    def kill(self, name: str) -> None:
        """SIGKILL: no shutdown hook runs."""
        process = self.processes.pop(name).process
        process.send_signal(signal.SIGKILL)
        process.wait()

    async def stop_all(self) -> None:
        for name in list(self.processes):
            await asyncio.to_thread(stop_server, self.processes.pop(name))

    def sample_rss(self) -> None:
        for name, server in self.processes.items():
            rss = process_rss(server.process.pid) or 0
            self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss)

    async def self_report(self, name: str) -> str:
        """What process ``name`` says of itself: readiness, and its non-zero rollbacks
        and lag by label (the metrics named in :data:`SELF_REPORTED`)."""
        server = self.processes.get(name)
        if server is None:
            return "not running"
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=3.0) as client:
                ready = (await client.get("/readyz")).json().get("checks")
                metrics = (await client.get("/metrics")).text
        except (httpx.HTTPError, ValueError) as exc:
            return f"no answer ({exc!r})"
        reported = [
            f"{sample.name}{{{','.join(f'{k}={v}' for k, v in sample.labels.items())}}} {sample.value:g}"
            for family in text_string_to_metric_families(metrics)
            for sample in family.samples
            if family.name.endswith(SELF_REPORTED)
            and sample.value
            and not sample.name.endswith("_created")
        ]
        return f"checks {ready}; " + ("; ".join(reported) or "no retries, no lag")

    def crashed(self) -> list[str]:
        """Processes that exited without being told to."""
        return [name for name, s in self.processes.items() if s.process.poll() is not None]

    def bus(self) -> NamespacedBus:
        """A client of this run's topics (the caller starts and closes it)."""
        return NamespacedBus(
            KafkaBus(KafkaOptions(bootstrap_servers=self.servers.bootstrap)), self.prefix
        )

    async def ends(self) -> dict[TopicPartition, int]:
        """The end offset of every consumed partition now."""
        bus = self.bus()
        await bus.start()
        try:
            topics = {t for group in CONSUMER_GROUPS.values() for t in group}
            return await bus.end_offsets(
                [TopicPartition(t, p) for t in sorted(topics) for p in range(PARTITIONS[t])]
            )
        finally:
            await bus.close()

    async def lag(self, upto: Mapping[TopicPartition, int] | None = None) -> int:
        """Records up to ``upto`` (default: the ends now) that a consumer group on their
        topic has not committed yet."""
        return sum((await self.lag_by_group(upto)).values())

    async def lag_by_group(
        self, upto: Mapping[TopicPartition, int] | None = None
    ) -> dict[str, int]:
        """:meth:`lag` per consumer group."""
        ends = upto if upto is not None else await self.ends()
        admin = AIOKafkaAdminClient(bootstrap_servers=self.servers.bootstrap)
        await admin.start()
        try:
            lags = {}
            for group, topics in CONSUMER_GROUPS.items():
                committed = await admin.list_consumer_group_offsets(self.group(group))
                lags[group] = 0
                for tp, end in ends.items():
                    if tp.topic in topics:
                        meta = committed.get(
                            KafkaTopicPartition(f"{self.prefix}{tp.topic}", tp.partition)
                        )
                        lags[group] += max(0, end - max(0, meta.offset if meta is not None else 0))
            return lags
        finally:
            await admin.close()

    async def history_written_twice(self) -> int:
        """The engine's history rows whose transition id another row has."""
        return await self._count(
            "SELECT count(*) - count(DISTINCT transition_id) FROM engine_transitions"
        )

    async def pending_deliveries(self) -> int:
        """Deliveries still queued, deferred or retrying."""
        return await self._count(
            "SELECT count(*) FROM messaging_deliveries "
            "WHERE status IN ('queued', 'deferred', 'retrying')"
        )

    async def _count(self, query: str) -> int:
        engine = create_engine(self.database_url)
        try:
            async with engine.connect() as connection:
                found = await connection.scalar(text(query))
        finally:
            await engine.dispose()
        return int(found or 0)


def own_warnings(log: Path) -> list[str]:
    """The last :data:`OWN_WARNINGS` warnings and errors of a service's JSON log, but for
    the bus client's own."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = [_warning(line) for line in lines]
    return [warning for warning in found if warning is not None][-OWN_WARNINGS:]


def _warning(line: str) -> str | None:
    """A log line as ``time message {fields}`` when it is a warning or an error of
    Milepost's own."""
    try:
        entry = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    own = not str(entry.get("logger", "")).startswith("aiokafka")
    if entry.get("level") not in ("warning", "error", "critical") or not own:
        return None
    fields = {k: v for k, v in entry.items() if k not in ("time", "level", "logger", "message")}
    return f"{str(entry.get('time', ''))[11:23]} {entry.get('message')} {fields or ''}"[:240]
