"""``milepost kafka ensure-topics``: per-topic partitions and retention, safe to run again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from typer.testing import CliRunner, Result

from services.cli import app
from shared.contracts import TOPICS

DAY_MS = 86_400_000


def run(env: dict[str, str], *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(app, ["kafka", "ensure-topics", *args], env=env)
    assert result.exit_code == code, result.output
    return result


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--partitions", "milepost.nope=3"], "unknown topic 'milepost.nope'"),
        (["--partitions", "milepost.events=0"], "N must be a whole number above 0"),
        (["--partitions", "milepost.events"], "is not TOPIC=VALUE"),
        (
            ["--partitions", "milepost.events=6", "--partitions", "milepost.accounts.events=4"],
            "milepost.accounts.events must have milepost.events' partition count",
        ),
        (
            ["--partitions", "milepost.scores=4"],
            "milepost.scores must have milepost.events' partition count",
        ),
        (["--retention", "milepost.events=soon"], "milepost.events=soon"),
        (["--retention", "milepost.events=PT0S"], "must be longer than zero"),
    ],
)
def test_bad_values_are_refused_before_kafka_is_asked(args: list[str], message: str) -> None:
    env = {"MILEPOST_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}
    result = run(env, *args, code=2)
    # Compared without the spacing and box of the rich error panel, which wraps lines.
    assert "".join(message.split()) in "".join(result.output.replace("│", "").split())


async def _admin(bootstrap: str) -> AIOKafkaAdminClient:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    return admin


async def _describe(bootstrap: str, topics: list[str]) -> dict[str, tuple[int, dict[str, str]]]:
    """Each topic's partition count and the configs set on the topic itself."""
    admin = await _admin(bootstrap)
    try:
        described = await admin.describe_topics(topics)
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in topics]
        )
    finally:
        await admin.close()
    overrides = {
        name: {entry[0]: entry[1] for entry in entries if entry[3] == 1}
        for response in configs
        for _code, _message, _type, name, entries in response.resources
    }
    return {t["topic"]: (len(t["partitions"]), overrides[t["topic"]]) for t in described}


async def _set_override(bootstrap: str, topic: str, configs: dict[str, str]) -> None:
    """Set ``configs`` on ``topic``, once the broker describes them: the controller
    acknowledges a change before the broker has applied it, and a command that reads the
    topic's configs meanwhile would read the old ones."""
    admin = await _admin(bootstrap)
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs)])
    finally:
        await admin.close()
    for _ in range(100):
        if configs.items() <= (await _describe(bootstrap, [topic]))[topic][1].items():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{topic} never showed {configs}")


@pytest.fixture
def prefixed_env(kafka_bootstrap: str, topic_prefix: str) -> Iterator[dict[str, str]]:
    yield {
        "MILEPOST_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "MILEPOST_TOPIC_PREFIX": f"{topic_prefix}.",
    }

    async def delete() -> None:
        admin = await _admin(kafka_bootstrap)
        try:
            await admin.delete_topics([f"{topic_prefix}.{spec.topic}" for spec in TOPICS])
        finally:
            await admin.close()

    asyncio.run(delete())


@pytest.mark.kafka
def test_topics_are_created_as_given_then_aligned_without_losing_partitions_or_overrides(
    prefixed_env: dict[str, str], kafka_bootstrap: str
) -> None:
    prefix = prefixed_env["MILEPOST_TOPIC_PREFIX"]
    events, dlq = f"{prefix}milepost.events", f"{prefix}milepost.events.dlq"
    attributed = f"{prefix}milepost.accounts.events"
    names = [f"{prefix}{spec.topic}" for spec in TOPICS]

    first = run(
        prefixed_env,
        "--replication-factor=1",
        "--partitions",
        "milepost.events=3",
        "--partitions",
        "milepost.triggers=2",
        "--retention",
        "milepost.events=P14D",
    )
    assert f"{events}\t3 partitions\tdelete\tretention P14D" in first.output
    found = asyncio.run(_describe(kafka_bootstrap, names))
    assert found[events] == (3, {"cleanup.policy": "delete", "retention.ms": str(14 * DAY_MS)})
    assert found[attributed][0] == found[f"{prefix}milepost.scores"][0] == 3  # paired with events
    assert found[f"{prefix}milepost.triggers"][0] == 2
    assert found[dlq] == (3, {"cleanup.policy": "delete", "retention.ms": str(30 * DAY_MS)})

    asyncio.run(_set_override(kafka_bootstrap, events, {"max.message.bytes": "2000000"}))
    run(
        prefixed_env,
        "--replication-factor=1",
        "--partitions",
        "milepost.events=6",
        "--retention",
        "milepost.events=P3D",
    )
    again = asyncio.run(_describe(kafka_bootstrap, names))
    assert again[events] == (
        3,
        {
            "cleanup.policy": "delete",
            "retention.ms": str(3 * DAY_MS),
            "max.message.bytes": "2000000",
        },
    )
    assert again[attributed][0] == 3
    assert again[dlq] == found[dlq]
