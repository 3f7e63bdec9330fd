"""Pick the bus the settings name."""

from __future__ import annotations

from shared.bus.kafka import KafkaBus, KafkaOptions
from shared.bus.memory import InMemoryBus
from shared.bus.namespaced import NamespacedBus
from shared.bus.protocol import Bus
from shared.settings import RuntimeSettings


def create_bus(settings: RuntimeSettings) -> Bus:
    """The bus the settings name, with ``MILEPOST_TOPIC_PREFIX`` applied when set."""
    bus = _plain_bus(settings)
    return NamespacedBus(bus, settings.topic_prefix) if settings.topic_prefix else bus


def _plain_bus(settings: RuntimeSettings) -> Bus:
    if settings.bus == "memory":
        return InMemoryBus()
    return KafkaBus(
        KafkaOptions(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=settings.kafka_client_id,
            linger_ms=settings.kafka_linger_ms,
            publish_timeout_s=settings.kafka_publish_timeout_seconds,
            retry_backoff_ms=settings.kafka_retry_backoff_ms,
            session_timeout_ms=settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        )
    )
