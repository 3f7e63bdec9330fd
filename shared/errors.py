"""The root of every error raised by ``shared``, and the consumer error vocabulary.

Consumer errors say what happens next: :class:`InvalidMessage` sends the record to the
topic's dead-letter topic and the consumer goes on; :class:`RetryableError` rolls the batch
back and retries it after :attr:`~RetryableError.retry_after` seconds::

    MilepostError
    ├── InvalidMessage          to the dead-letter topic, the consumer goes on
    ├── RetryableError          roll back, retry after 0.5 s
    │   ├── BusUnavailable      the bus did not acknowledge
    │   ├── CommitFailed        the consumer offsets could not be committed
    │   ├── StoreUnavailable    the database failed (wraps SQLAlchemy's and OS errors)
    │   └── PartitionMoved      another member was first: roll back at once
    └── StartRefused
"""

from typing import ClassVar


class MilepostError(Exception):
    """Root of the errors raised by the shared toolkit."""


class InvalidMessage(MilepostError):
    """A record that can never be processed; it goes to the dead-letter topic with this reason."""


class RetryableError(MilepostError):
    """A passing failure (broker or database unavailable); the same work is tried again."""

    retry_after: ClassVar[float] = 0.5
    """Seconds a consumer waits before it retries the batch it rolled back."""

    @property
    def reason(self) -> str:
        """The retry's label on a consumer's ``..._batch_retries`` metric: the class name
        of the failure (of the one wrapped, for a wrapper)."""
        return type(self.__cause__ or self).__name__


class BusUnavailable(RetryableError):
    """The bus did not acknowledge a publish; nothing may be reported as durable."""


class CommitFailed(RetryableError):
    """The partition moved to another group member; its records will be redelivered there."""


class StoreUnavailable(RetryableError):
    """The database failed (connection lost, timeout, lock); raised from the driver's
    error at the consumer's edge."""


class PartitionMoved(RetryableError):
    """Another group member was first: it moved a partition's applied offset, applied one
    of the batch's events or wrote one of its accounts. This member lost the partition; it
    rolls back at once and learns its assignment again."""

    retry_after = 0.0

    @property
    def reason(self) -> str:
        return "partition_moved"


class StartRefused(MilepostError):
    """A process must not start on the state it found (a bus file in use elsewhere, or a
    bus log behind the applied offsets); the message says what and where."""
