"""The scoring service's own settings (``MILEPOST_SCORING_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.settings import BATCH_WAIT_MS, BatchWaitMs


class ScoringSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MILEPOST_SCORING_", extra="ignore")

    group_id: str = Field(default="milepost-scoring", description="Kafka consumer group.")
    max_batch_records: int = Field(
        default=1000,
        ge=1,
        description="Records per checkpoint: an account touched several times in a batch is "
        "scored once, after its last event.",
    )
    poll_timeout_ms: int = Field(default=200, ge=10, le=10_000)
    batch_wait_ms: BatchWaitMs = BATCH_WAIT_MS
    sweep_interval_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How often accounts with no new events are re-scored, for the signals "
        "that move with time alone (silence, an inactive decision maker, a renewal drawing "
        "near); an account is re-scored when its last score is at least this old.",
    )
    risk_dwell_seconds: int = Field(
        default=3600,
        ge=0,
        description="How long (the account's event time) a new risk level must hold before "
        "it is announced in score events, and so to the node engine's risk_changed.",
    )
    max_sweep_accounts: int = Field(
        default=500, ge=1, description="Accounts re-scored per sweep step (the rest next step)."
    )
    account_cache_size: int = Field(
        default=50_000, ge=1, description="Accounts whose metrics are kept in memory."
    )
    definitions_refresh_seconds: float = Field(
        default=2.0, gt=0, description="How soon newly published metric definitions count."
    )
    peers_refresh_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often the peer distributions of diagnostics are rebuilt from the "
        "stored accounts (taking in the accounts other group members scored).",
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="An admin token for /api/scoring/ covering every workspace, from a "
        "Secret (compared hashed; no default). Without it only tokens from `milepost "
        "admin-token create` open the API, which is closed until one exists.",
    )
