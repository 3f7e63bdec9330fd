"""The message bus: a :class:`Bus` protocol, an aiokafka adapter and an in-memory twin.

Both implementations keep Kafka's semantics: keyed partitioning with Kafka's murmur2,
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
