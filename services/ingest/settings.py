"""Ingest's own settings (``MILEPOST_INGEST_*``): request limits and deduplication."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.tenancy.service import WRITE_KEY_CACHE_SECONDS


class IngestSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MILEPOST_INGEST_", extra="ignore")

    max_event_bytes: int = Field(default=32 * 1024, ge=1024, description="Segment: 32 KB.")
    max_batch_bytes: int = Field(default=500 * 1024, ge=1024, description="Segment: 500 KB.")
    max_batch_events: int = Field(default=2500, ge=1, description="Segment: 2,500.")
    max_nesting_depth: int = Field(default=32, ge=4, le=256)
    dedup_window: timedelta = Field(default=timedelta(hours=24))
    write_key_cache_ttl: timedelta = Field(
        default=timedelta(seconds=WRITE_KEY_CACHE_SECONDS),
        description="How long a revoked key may still pass.",
    )
    retry_after_seconds: int = Field(default=5, ge=1, description="Sent with 503 answers.")
