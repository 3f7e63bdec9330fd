"""The node engine's own settings (``MILEPOST_ENGINE_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import BATCH_WAIT_MS, BatchWaitMs


class EngineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MILEPOST_ENGINE_", extra="ignore")

    group_id: str = Field(default="milepost-engine", description="Kafka consumer group.")
    max_batch_records: int = Field(
        default=1000,
        ge=1,
        description="Records per checkpoint: larger batches write less often, smaller ones "
        "fire due timers sooner (timers are looked up between batches).",
    )
    poll_timeout_ms: int = Field(default=200, ge=10, le=10_000)
    batch_wait_ms: BatchWaitMs = BATCH_WAIT_MS
    timer_interval_ms: int = Field(
        default=250, ge=10, le=10_000, description="How often due timers are looked up."
    )
    max_timers_per_batch: int = Field(default=500, ge=1)
    state_cache_size: int = Field(
        default=500_000, ge=1, description="Account states kept in memory (per path)."
    )
    catalog_refresh_seconds: float = Field(
        default=2.0, gt=0, description="How soon a published or paused path takes effect."
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="An admin token for /api/engine/ covering every workspace, from a "
        "Secret (compared hashed; no default). Without it only tokens from `milepost "
        "admin-token create` open the API, which is closed until one exists.",
    )
