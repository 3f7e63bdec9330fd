from __future__ import annotations

import random

from aiokafka.partitioner import murmur2 as aiokafka_murmur2

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
