"""The embedded mode (``milepost run``): every service in one process on one port.

By default the bus and the database are files under ``MILEPOST_DATA_DIR`` (``bus.db`` and
SQLite's ``milepost.db``), so a newcomer needs no servers; with ``MILEPOST_BUS=kafka`` and
``MILEPOST_DATABASE_URL`` the same process runs on Kafka and PostgreSQL.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI

from services.admin_api import admin_dependencies
from services.console.endpoints import mount_console
from services.ingest.app import ledger_pruning, mount_ingest
from services.ingest.settings import IngestSettings
from services.messaging.app import (
    embedded_settings,
    mount_messaging,
    publish_reference_playbooks,
)
from services.messaging.settings import MessagingSettings
from services.migrations import upgrade_to_head
from services.node_engine.app import mount_engine
from services.node_engine.paths.service import REFERENCE_PATHS, list_paths, load_catalog, publish
from services.node_engine.settings import EngineSettings
from services.sandbox import CLOCK_FILE, sandbox_router
from services.scoring.app import mount_scoring, publish_reference_metrics
from services.scoring.settings import ScoringSettings
from services.serving import serve
from services.simulation_router import simulation_router
from shared.attribution.stage import attribution_stage
from shared.bus.factory import create_bus
from shared.clock import ShiftedClock, SystemClock
from shared.consuming.offsets import every_applied_offset
from shared.contracts import TOPICS
from shared.db import create_engine
from shared.durations import format_duration
from shared.errors import BusUnavailable, StartRefused
from shared.observability.http import create_http_app
from shared.observability.tracing import configure_tracing
from shared.private_files import write_private
from shared.runtime import Resources, open_resources
from shared.settings import RuntimeSettings
from shared.supervision import Worker
from shared.tenancy.admin_tokens import create_token, grant_of
from shared.tenancy.service import create_workspace, find_workspace

logger = logging.getLogger(__name__)

DEMO_WORKSPACE = "demo"


async def run_embedded(runtime: RuntimeSettings, *, sandbox: ShiftedClock | None = None) -> None:
    """Serve every service on one port until stopped; on the ``sandbox`` clock when given
    (see :mod:`services.sandbox`), else the wall clock."""
    runtime.private_data_dir()
    engine = create_engine(runtime.resolved_database_url())
    tracing = configure_tracing(runtime, service="milepost")
    clock = sandbox or SystemClock()
    async with open_resources(create_bus(runtime), engine, clock, tracing=tracing) as (resources):
        await upgrade_to_head(engine)
        try:
            await resources.bus.ensure_topics(
                TOPICS, replication_factor=runtime.kafka_replication_factor
            )
        except BusUnavailable as exc:
            logger.warning("topics not ensured; the bus is unreachable", extra={"error": str(exc)})
        if runtime.bus != "kafka":
            await refuse_a_bus_behind_applied_offsets(runtime, resources)
        write_key = await demo_write_key(runtime, resources)
        admin_token = await embedded_admin_token(runtime, resources)
        app = create_http_app(
            "Milepost",
            "Every Milepost service on one port: the Segment-compatible ingest API under "
            "`/v1/`, the node engine's admin API under `/api/engine/`, scoring under "
            "`/api/scoring/`, messaging under `/api/messaging/`, the console at `/`, health "
            "at `/healthz` and `/readyz`, metrics at `/metrics`.",
            resources,
            max_body_bytes=runtime.max_request_bytes,
        )
        background = mount_services(app, runtime, resources)
        mount_operator_routes(app, resources, sandbox=sandbox, data_dir=runtime.data_dir)
        await publish_reference_paths(resources)
        await publish_reference_metrics(resources, DEMO_WORKSPACE)
        await publish_reference_playbooks(resources, DEMO_WORKSPACE)
        print(
            _banner(runtime, write_key, admin_token)
            + _sandbox_banner(runtime, sandbox, admin_token),
            flush=True,
        )
        await serve(app, host=runtime.host, port=runtime.port, background=background)


def mount_operator_routes(
    app: FastAPI, resources: Resources, *, sandbox: ShiftedClock | None, data_dir: Path
) -> None:
    """Add the console at ``/``, draft simulation and, on a ``sandbox`` clock, its clock
    routes; each behind the admin tokens like every admin API."""
    mount_console(
        app,
        resources.sessions,
        [
            EngineSettings().admin_token,
            ScoringSettings().admin_token,
            MessagingSettings().admin_token,
        ],
    )
    app.include_router(
        simulation_router(
            resources.bus,
            admin_dependencies(
                resources.sessions,
                EngineSettings().admin_token,
                variable="MILEPOST_ENGINE_ADMIN_TOKEN",
            ),
        )
    )
    if sandbox is not None:
        app.include_router(
            sandbox_router(
                sandbox,
                data_dir / CLOCK_FILE,
                admin_dependencies(
                    resources.sessions,
                    EngineSettings().admin_token,
                    variable="MILEPOST_ENGINE_ADMIN_TOKEN",
                ),
            )
        )


def mount_services(app: FastAPI, runtime: RuntimeSettings, resources: Resources) -> list[Worker]:
    """Every service's API on ``app``; returns the background workers to run beside them."""
    ingest = mount_ingest(app, IngestSettings(), resources)
    worker = mount_engine(app, EngineSettings(), resources)
    stage = attribution_stage(resources)
    scoring = mount_scoring(app, ScoringSettings(), resources, load_paths=load_catalog)
    messaging = mount_messaging(app, embedded_settings(MessagingSettings(), runtime), resources)
    return [
        ledger_pruning(ingest),
        Worker("attribution", stage.run),
        Worker("engine", worker.run),
        Worker("scoring", scoring.run),
        *messaging,
    ]


async def refuse_a_bus_behind_applied_offsets(
    runtime: RuntimeSettings, resources: Resources
) -> None:
    """Raise :class:`StartRefused` when a consumer group has applied offsets beyond the
    end of the bus log (its file deleted or replaced, or an older bus restored): the
    records published from now on would get offsets already applied, and be skipped."""
    async with resources.sessions() as session:
        applied = await every_applied_offset(session)
    partitions = sorted({tp for _, tp in applied}, key=lambda tp: (tp.topic, tp.partition))
    ends = await resources.bus.end_offsets(partitions)
    behind = sorted(
        (group, tp.topic, tp.partition, offset, ends[tp])
        for (group, tp), offset in applied.items()
        if offset > ends[tp]
    )
    if not behind:
        return
    group, topic, partition, offset, end = behind[0]
    where = f"the bus file {runtime.bus_file}" if runtime.bus == "embedded" else "the in-memory bus"
    raise StartRefused(
        f"{where} disagrees with the database: {topic}[{partition}] ends at offset {end} in "
        f"the bus, but consumer group {group!r} has applied it up to offset {offset} "
        f"(table engine_applied_offsets; {len(behind)} partitions disagree). Starting would skip the "
        "records published until then. Was the bus file deleted or replaced, or the "
        "database restored from a newer backup? Put back the bus file that goes with this "
        "database; docs/operations.md, 'Embedded mode', says how to start over instead."
    )


async def publish_reference_paths(resources: Resources) -> None:
    """Publish the two reference growth paths to the demo workspace on first start."""
    async with resources.sessions() as session:
        workspace = await find_workspace(session, DEMO_WORKSPACE)
        if workspace is None:
            return
        existing, _ = await list_paths(session, workspace.id, limit=1)
        if existing:
            return
        for source in sorted(REFERENCE_PATHS.glob("*.yaml")):
            await publish(
                session, workspace.id, source.name, source.read_text(), clock=resources.clock
            )
        await session.commit()


async def demo_write_key(runtime: RuntimeSettings, resources: Resources) -> str:
    """The demo workspace's write key, creating the workspace on first start.

    Keys are stored hashed, so the demo key's plaintext is kept in the data folder
    (mode 0600) to be shown again on every start; real workspaces never are.
    """
    key_file = runtime.data_dir / "demo-write-key"
    async with resources.sessions() as session:
        if await find_workspace(session, DEMO_WORKSPACE) is None:
            issued = await create_workspace(session, DEMO_WORKSPACE, clock=resources.clock)
            await session.commit()
            write_private(key_file, issued.write_key)
    if key_file.exists():
        return key_file.read_text().strip()
    return "(not on file: issue one with `milepost workspace rotate demo`, shown once)"


async def embedded_admin_token(runtime: RuntimeSettings, resources: Resources) -> str:
    """An admin token for every workspace, made on first start and again whenever the one
    on file no longer works (revoked, another database).

    Like the demo write key, its plaintext is kept in the data folder (mode 0600) to be
    shown on every start; the database holds only its hash.
    """
    token_file = runtime.data_dir / "admin-token"
    kept = token_file.read_text().strip() if token_file.exists() else ""
    async with resources.sessions() as session:
        if kept and await grant_of(session, kept) is not None:
            return kept
        issued = await create_token(
            session, workspace=None, label="embedded", clock=resources.clock
        )
        await session.commit()
    write_private(token_file, issued.token)
    return issued.token


def _banner(runtime: RuntimeSettings, write_key: str, admin_token: str) -> str:
    base = f"http://{runtime.host}:{runtime.port}"
    admin = f"curl -H 'Authorization: Bearer {admin_token}'"
    return "\n".join(
        [
            "",
            f"Milepost is running on {base} (bus: {runtime.bus}, data: {runtime.data_dir})",
            f"  console:           {base}/ (sign in with the admin token)",
            f"  API docs:          {base}/docs",
            f"  demo write key:    {write_key}",
            f"  admin token:       {admin_token} (every workspace; see `milepost admin-token`)",
            "  try it: a merchant joins (the platform-merchant growth path enrols it) ...",
            f"    curl -u '{write_key}:' -H 'Content-Type: application/json' \\",
            '      -d \'{"userId":"u1","groupId":"acme","traits":{"business_type":"platform"},"context":{"traits":{"role":"admin"}}}\' \\',
            f"      {base}/v1/group",
            "  ... and completes a node:",
            f"    curl -u '{write_key}:' -H 'Content-Type: application/json' \\",
            '      -d \'{"userId":"u1","event":"Merchant Approved","context":{"groupId":"acme"}}\' \\',
            f"      {base}/v1/track",
            "  ... then read its timeline and its health score with the admin token:",
            f"    {admin} {base}/api/engine/workspaces/demo/accounts/acme/timeline",
            f"    {admin} {base}/api/scoring/workspaces/demo/accounts/acme",
            "",
        ]
    )


def _sandbox_banner(runtime: RuntimeSettings, sandbox: ShiftedClock | None, token: str) -> str:
    if sandbox is None:
        return ""
    base = f"http://{runtime.host}:{runtime.port}/api/sandbox/clock"
    return "\n".join(
        [
            f"SANDBOX: the clock reads {sandbox.now():%Y-%m-%d %H:%M} UTC, "
            f"{format_duration(sandbox.offset)} ahead of the wall clock; move it forward:",
            f"    curl -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\",
            f'      -d \'{{"by":"P3D"}}\' {base}/advance',
            "",
        ]
    )
