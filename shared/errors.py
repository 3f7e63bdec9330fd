"""The root of every error raised by ``shared``, and the consumer error vocabulary.

Consumer errors say what happens next: :class:`InvalidMessage` sends the record to the
topic's dead-letter topic and the consumer goes on; :class:`RetryableError` retries it.
"""


class MilepostError(Exception):
    """Root of the errors raised by the shared toolkit."""


class InvalidMessage(MilepostError):
    """A record that can never be processed; it goes to the dead-letter topic with this reason."""


class RetryableError(MilepostError):
    """A passing failure (broker or database unavailable); the same work is tried again."""


class BusUnavailable(RetryableError):
    """The bus did not acknowledge a publish; nothing may be reported as durable."""


class CommitFailed(RetryableError):
    """The partition moved to another group member; its records will be redelivered there."""


class StartRefused(MilepostError):
    """A process must not start on the state it found (a bus file in use elsewhere, or a
    bus log behind the applied offsets); the message says what and where."""
