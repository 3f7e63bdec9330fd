"""Settings every service shares: where the bus and the database are, how to log.

Built once in ``main`` and passed down; nothing reads the environment at import time.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

BatchWaitMs = Annotated[
    int,
    Field(
        ge=0,
        le=1_000,
        description="How long a poll that found fewer records than a batch holds waits for "
        "more. Under load, fewer and larger checkpoints leave the CPU to the rest of the "
        "pipeline; 0 applies what came at once. A poll that waited 20 ms or more for its "
        "first record does not wait: the stage was idle.",
    ),
]
"""A stream stage's ``batch_wait_ms`` setting
(:meth:`shared.consuming.stream.Handler.batch_wait_ms`)."""
BATCH_WAIT_MS = 5
"""Its default, measured against 0, 10 and 20 ms on the pipeline benchmark
(docs/architecture.md, "Where a pipeline event's time goes")."""


class RuntimeSettings(BaseSettings):
    """``MILEPOST_*`` variables. The defaults are the embedded mode: a bus and a SQLite
    database in files under ``data_dir``."""

    model_config = SettingsConfigDict(env_prefix="MILEPOST_", extra="ignore")

    data_dir: Path = Field(default=Path(".milepost"), description="Embedded data folder.")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    bus: Literal["embedded", "kafka", "memory"] = Field(
        default="embedded",
        description="embedded: a file under data_dir; kafka; memory: keeps nothing (tests).",
    )
    embedded_bus_retention: timedelta | None = Field(
        default=None,
        description="Age past which the embedded bus drops records every consumer group "
        "has read; default: each topic's retention (7 days, dead letters 30).",
    )
    embedded_bus_max_records: int = Field(
        default=1_000_000, ge=1, description="Records the embedded bus keeps per partition."
    )
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_client_id: str = "milepost"
    kafka_linger_ms: int = Field(
        default=0,
        ge=0,
        description="How long the producer holds a batch for more records. 0 sends each "
        "publish at once (batches still form while a request is in flight); a few ms batch "
        "many small concurrent publishes better, at that cost in latency at every hop.",
    )
    kafka_replication_factor: int = Field(default=1, ge=1)
    kafka_publish_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        description="A publish not acknowledged by then is a 503 and marks the broker down.",
    )
    kafka_retry_backoff_ms: int = Field(
        default=500, ge=10, description="Pause before a Kafka client retries or reconnects."
    )
    kafka_session_timeout_ms: int = Field(
        default=6000,
        ge=1000,
        description="A consumer silent this long leaves its group; its partitions move.",
    )
    kafka_heartbeat_interval_ms: int = Field(
        default=1000, ge=100, description="How often a consumer tells its group it lives."
    )
    topic_prefix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9._-]{0,100}$",
        description="Put before every topic name, for several installations on one cluster.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default: SQLite under data_dir."
    )
    tracing_exporter: Literal["none", "console", "otlp"] = Field(
        default="none", description="Where spans go: nowhere (tracing off), stdout, or OTLP."
    )
    tracing_endpoint: str = Field(
        default="http://127.0.0.1:4318/v1/traces",
        description="The OTLP/HTTP traces endpoint (an OpenTelemetry Collector).",
    )
    tracing_sample_ratio: float = Field(
        default=1.0, ge=0, le=1, description="Share of new traces kept; children follow."
    )
    max_request_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=64 * 1024,
        description="The largest request body any route accepts (413 beyond); ingest's "
        "/v1 batches have their own, smaller limit.",
    )
    log_level: str = "INFO"
    log_format: Literal["json", "console"] = "json"

    @property
    def bus_file(self) -> Path:
        """The embedded bus's file."""
        return self.data_dir / "bus.db"

    def private_data_dir(self) -> Path:
        """The data folder, created if missing, readable by its owner only (0700)."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        return self.data_dir

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'milepost.db').resolve()}"
