"""Export the topic contracts: a JSON Schema per payload and an AsyncAPI 3.0 document."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import yaml
from pydantic.json_schema import models_json_schema

from shared import __version__
from shared.contracts.topics import TOPICS, TopicSpec

KAFKA_BINDING_VERSION = "0.5.0"
SUBSCRIPTIONS_ROUTE = "/api/messaging/workspaces/{workspace}/subscriptions"
"""Where a marketing system registers a webhook URL for triggers (the messaging API)."""


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 description of every Milepost topic, its key and its payload."""
    payloads = list(dict.fromkeys(spec.payload for spec in TOPICS))
    _, definitions = models_json_schema(
        [(model, "serialization") for model in payloads],
        ref_template="#/components/schemas/{model}",
    )
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for spec in TOPICS:
        channel_id = str(spec.topic).removeprefix("milepost.").replace(".", "_")
        message_name = spec.payload.__name__
        messages[message_name] = _message(spec)
        channels[channel_id] = _channel(spec)
        for action in ("send", "receive"):
            operations[f"{action}_{channel_id}"] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "messages": [{"$ref": f"#/channels/{channel_id}/messages/{message_name}"}],
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Milepost topics",
            "version": __version__,
            "description": (
                "Kafka topics between Milepost's services and the marketing systems that "
                "subscribe to them. Keys keep one account's records in one partition. "
                "A marketing system reads `milepost.triggers` with its own consumer group, "
                f"or registers a URL at `{SUBSCRIPTIONS_ROUTE}` to receive the same "
                "TriggerEnvelope as a Standard Webhooks request (see docs/messaging-delivery.md)."
            ),
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": definitions.get("$defs", {})},
    }


def _message(spec: TopicSpec) -> dict[str, Any]:
    """The AsyncAPI message of a topic: its payload's schema and its key rule."""
    name = spec.payload.__name__
    return {
        "name": name,
        "contentType": "application/json",
        "payload": {"$ref": f"#/components/schemas/{name}"},
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": spec.key_rule},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def _channel(spec: TopicSpec) -> dict[str, Any]:
    """The AsyncAPI channel of a topic: its address, message and Kafka configuration."""
    topic = str(spec.topic)
    name = spec.payload.__name__
    return {
        "address": topic,
        "description": spec.summary,
        "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        "bindings": {
            "kafka": {
                "topic": topic,
                "partitions": spec.partitions,
                "topicConfiguration": _topic_configuration(spec.retention, spec.cleanup_policy),
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def write_contracts(folder: Path) -> list[Path]:
    """Write ``asyncapi.yaml`` and ``schemas/<Payload>.json``; returns the paths written."""
    schemas = folder / "schemas"
    schemas.mkdir(parents=True, exist_ok=True)
    written = []
    for model in dict.fromkeys(spec.payload for spec in TOPICS):
        path = schemas / f"{model.__name__}.json"
        schema = model.model_json_schema(mode="serialization")
        path.write_bytes(
            orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
        written.append(path)
    document = folder / "asyncapi.yaml"
    document.write_text(yaml.safe_dump(asyncapi_document(), sort_keys=False, allow_unicode=True))
    written.append(document)
    return written


def _topic_configuration(retention: Any, cleanup_policy: str) -> dict[str, Any]:
    configuration: dict[str, Any] = {"cleanup.policy": [cleanup_policy]}
    if retention is not None:
        configuration["retention.ms"] = int(retention.total_seconds() * 1000)
    return configuration
