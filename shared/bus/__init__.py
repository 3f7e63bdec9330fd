"""The message bus: a :class:`Bus` protocol, an aiokafka adapter, and in-process buses
over a log on disk (embedded mode) or in memory (unit tests).

Every implementation keeps Kafka's semantics: keyed partitioning with Kafka's murmur2,
per-partition order, consumer groups that split partitions, committed offsets that a new
group member resumes from.
"""

from shared.bus.protocol import (
    Bus,
    ConsumedRecord,
    Consumer,
    OutgoingRecord,
    TopicPartition,
)

__all__ = ["Bus", "ConsumedRecord", "Consumer", "OutgoingRecord", "TopicPartition"]
