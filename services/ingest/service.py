"""What every ingest endpoint does after parsing: authenticate, normalise each item,
publish the good ones durably, and report per item what was rejected."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from services.ingest.errors import ItemRejected, Problem, RequestRejected
from services.ingest.publishing import EventPublisher, IngestMetrics, PreparedEvent
from services.ingest.request_body import BodyLimits
from services.ingest.settings import IngestSettings
from shared.clock import Clock
from shared.tenancy.service import WriteKeyAuthenticator, write_key_in

Normaliser = Callable[[Any, int], PreparedEvent]
"""Builds the envelope for the item at an index, or raises ItemRejected."""


@dataclass(frozen=True, slots=True)
class RejectedItem:
    index: int
    message_id: str | None
    problems: tuple[Problem, ...]


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    accepted: int
    duplicates: int
    rejected: tuple[RejectedItem, ...]


class IngestService:
    def __init__(
        self,
        *,
        settings: IngestSettings,
        publisher: EventPublisher,
        authenticator: WriteKeyAuthenticator,
        metrics: IngestMetrics,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._publisher = publisher
        self._authenticator = authenticator
        self._metrics = metrics

    async def forget_expired(self) -> int:
        return await self._publisher.forget_expired(self.settings.dedup_window)

    @property
    def body_limits(self) -> BodyLimits:
        return BodyLimits(self.settings.max_batch_bytes, self.settings.max_nesting_depth)

    async def authenticate(self, request: Request, body: Any) -> str:
        """The workspace id of the write key in the Authorization header (HTTP Basic user or
        Bearer), or in the body's writeKey."""
        write_key = write_key_in(request.headers.get("authorization", ""))
        if write_key is None and isinstance(body, dict) and isinstance(body.get("writeKey"), str):
            write_key = body["writeKey"]
        if not write_key:
            raise RequestRejected(
                401,
                [Problem("Authorization", "missing", "send the write key as HTTP Basic user")],
            )
        workspace_id = await self._authenticator.workspace_for(write_key)
        if workspace_id is None:
            raise RequestRejected(
                401, [Problem("Authorization", "invalid", "unknown or revoked write key")]
            )
        return workspace_id

    async def ingest(
        self, workspace_id: str, items: Sequence[Any], normalise: Normaliser, *, field: str
    ) -> IngestOutcome:
        """Normalise every item, publish the valid ones, report the others.

        Raises :class:`RequestRejected` when every item is invalid (nothing to publish)
        and BusUnavailable when the bus does not acknowledge (nothing reported durable).
        """
        envelopes: list[PreparedEvent] = []
        refused: list[RejectedItem] = []
        for index, item in enumerate(items):
            try:
                envelopes.append(normalise(item, index))
            except ItemRejected as exc:
                refused.append(_rejected_item(index, item, exc, field))
        self._metrics.events.labels("rejected").inc(len(refused))
        if refused and not envelopes:
            raise RequestRejected(400, [p for r in refused for p in r.problems])
        report = await self._publisher.publish(workspace_id, envelopes)
        return IngestOutcome(report.published, report.duplicates, tuple(refused))


def _rejected_item(index: int, item: Any, error: ItemRejected, field: str) -> RejectedItem:
    prefix = f"{field}[{index}]" if field else ""
    problems = tuple(
        Problem(
            ".".join(part for part in (prefix, p.field) if part) or "body",
            p.code,
            p.message,
            p.limit,
        )
        for p in error.problems
    )
    message_id = item.get("messageId") if isinstance(item, dict) else None
    return RejectedItem(index, message_id if isinstance(message_id, str) else None, problems)
