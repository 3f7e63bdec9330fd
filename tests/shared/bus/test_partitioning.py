from __future__ import annotations

import random

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2

from shared.bus import kafka
from shared.bus.partitioning import murmur2, partition_for


def test_murmur2_matches_the_kafka_client_for_every_tail_length() -> None:
    generator = random.Random(7)
    for length in range(64):
        data = bytes(generator.getrandbits(8) for _ in range(length))
        assert murmur2(data) & 0x7FFFFFFF == aiokafka_murmur2(data) & 0x7FFFFFFF


def _signed(value: int) -> int:
    return value - (1 << 32) if value >= 1 << 31 else value


def test_kafka_java_client_vectors() -> None:
    # The values Kafka's Java client computes for these keys (its UtilsTest).
    vectors = {
        b"21": -973932308,
        b"foobar": -790332482,
        b"a-little-bit-long-string": -985981536,
        b"a-little-bit-longer-string": -1486304829,
        b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        b"abc": 479470107,
    }
    for key, expected in vectors.items():
        assert _signed(murmur2(key)) == expected, key


def test_partition_is_the_positive_hash_modulo_partitions() -> None:
    assert partition_for(b"21", 12) == (-973932308 & 0x7FFFFFFF) % 12


def test_kafka_bus_places_keys_as_the_kafka_client_would(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # KafkaBus computes the partition itself (and remembers it per key) instead of
    # letting aiokafka hash every record: the placement must stay the client's.
    monkeypatch.setattr(kafka, "_PLACEMENT_CACHE_KEYS", 50)  # also exercise the reset
    generator = random.Random(11)
    keys = [
        bytes(generator.getrandbits(8) for _ in range(generator.randrange(40))) for _ in range(300)
    ]
    for partitions in (1, 3, 12, 50):
        placement = kafka._KeyPlacement(partitions)
        every = list(range(partitions))
        for key in keys + keys:
            assert placement.partition_for(key) == DefaultPartitioner()(key, every, every)
