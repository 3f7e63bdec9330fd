"""The attribution stage's own settings (``MILEPOST_ATTRIBUTION_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import BATCH_WAIT_MS, BatchWaitMs


class AttributionSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MILEPOST_ATTRIBUTION_", extra="ignore")

    group_id: str = Field(default="milepost-attribution", description="Kafka consumer group.")
    max_batch_records: int = Field(default=1000, ge=1, description="Records per checkpoint.")
    poll_timeout_ms: int = Field(default=200, ge=10, le=10_000)
    batch_wait_ms: BatchWaitMs = BATCH_WAIT_MS
    membership_cache_size: int = Field(
        default=500_000, ge=1, description="Users whose membership is kept in memory."
    )
