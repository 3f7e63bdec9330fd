"""Milepost's error tree: every error the code base raises derives from :class:`MilepostError`.

```
MilepostError
├── Refused: a request refused; ``status_code`` and the request ``field`` at fault
│   ├── BadRequest (400)    e.g. an unsubscribe token that does not verify
│   ├── Unauthorized (401)  no valid admin token or write key
│   ├── Forbidden (403)     a token of another workspace
│   ├── NotFound (404)      PathNotFound, PlaybookNotFound, TaskNotFound, AccountNotScored...
│   ├── Conflict (409)      PathUnchanged, PlaybookUnchanged, TaskClosed...
│   ├── Invalid (422)       DefinitionError (an invalid file), PathRejected, BadCursor...
│   └── Unavailable (503)   a dependency cannot answer now (e.g. the bus a simulation reads)
├── IngestError, NodeEngineError, MessagingError, ScoringError: each service's root;
│   a service's refusal derives from its root and from one status base above
├── InvalidMessage: a record that can never be processed (to the dead-letter topic)
├── RetryableError: a passing failure; the consumer rolls back and retries after ``retry_after``
│   ├── BusUnavailable      the bus did not acknowledge
│   ├── CommitFailed        the consumer offsets could not be committed
│   ├── StoreUnavailable    the database failed (wraps SQLAlchemy's and OS errors)
│   └── PartitionMoved      another member was first: roll back at once
└── StartRefused: a process that must not start on the state it found
```

Every HTTP API answers a :class:`Refused` the same way (one handler,
:func:`shared.http_errors.answer_refused`): its status, and
``{"detail": {"field", "message", "problems"}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar


class MilepostError(Exception):
    """Root of every error Milepost raises."""


# -- Refusals: the status-bearing bases -----------------------------------------------------


class Refused(MilepostError):
    """A request that cannot be done as asked. The HTTP answer is ``status_code`` with
    ``field`` (the request field at fault; each class names its usual one) and the message;
    a CLI prints the message and exits 1."""

    status_code: ClassVar[int] = 400
    field: str = "body"
    headers: Mapping[str, str] | None = None

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        if field is not None:
            self.field = field
        if headers is not None:
            self.headers = headers


class BadRequest(Refused):
    """A request that cannot be understood (400)."""


class Unauthorized(Refused):
    """No valid credentials (401); ``headers`` carry the ``WWW-Authenticate`` challenge."""

    status_code = 401
    field = "Authorization"


class Forbidden(Refused):
    """Valid credentials that do not cover what was asked (403)."""

    status_code = 403
    field = "Authorization"


class NotFound(Refused):
    """Nothing by that name or id (404)."""

    status_code = 404


class Conflict(Refused):
    """The request collides with the current state (409), e.g. the same content as the
    current version, or a task already closed."""

    status_code = 409


class Invalid(Refused):
    """A well-formed request whose content breaks a rule (422)."""

    status_code = 422


class Unavailable(Refused):
    """A request that cannot be done now because something it needs does not answer
    (503); the same request may succeed later (``headers`` may carry ``Retry-After``)."""

    status_code = 503


# -- Consumers: what happens to a record next -----------------------------------------------


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
