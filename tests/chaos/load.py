"""The load client: open loop per lane, retrying as Segment SDKs do.

Request *k* is due at ``pace.at(request.due)`` whatever earlier answers took; a lane sends
its requests in order, one at a time, so a lane that is retrying falls behind and catches
up (its backlog is the client-side queue an SDK keeps). A 503, 429, 5xx, a refused
connection or a timeout is retried with the same body, so the same ``messageId``s, after
``Retry-After`` (or a capped exponential back-off) until the deadline.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp
import orjson

from tests.chaos.workload import SEGMENT, Request, Workload, stamped, utc_now

RETRYABLE = frozenset({429, 500, 502, 503, 504})
BACKOFF_S = (0.2, 0.5, 1.0, 2.0)
CONTENT_TYPES = {SEGMENT: "application/json"}
CRM_BATCH = "application/cloudevents-batch+json"


@dataclass(frozen=True, slots=True)
class Pace:
    """Events per second, and a burst of ``burst_factor`` times that rate for
    ``burst_seconds`` starting ``burst_at`` seconds in."""

    rate: float
    burst_at: float = 0.0
    burst_seconds: float = 0.0
    burst_factor: float = 1.0

    def at(self, events: int) -> float:
        """Seconds from the start at which the ``events``-th event is due."""
        before = self.burst_at * self.rate
        if events <= before or self.burst_seconds <= 0:
            return events / self.rate
        fast = self.rate * self.burst_factor
        during = self.burst_seconds * fast
        if events <= before + during:
            return self.burst_at + (events - before) / fast
        return self.burst_at + self.burst_seconds + (events - before - during) / self.rate


@dataclass(slots=True)
class Sent:
    """What the client sent and what ingest acknowledged."""

    sent: set[str] = field(default_factory=set)
    acknowledged: set[str] = field(default_factory=set)
    answers: Counter[str] = field(default_factory=Counter)
    """Answers by status (``error`` for no answer)."""
    retry_after: int = 0
    """503 answers that carried ``Retry-After``."""
    rejected: list[str] = field(default_factory=list)


async def offer(
    ingest_url: str, write_key: str, work: Workload, pace: Pace, *, deadline: Callable[[], float]
) -> Sent:
    """Send ``work`` at ``pace``; every request retried until acknowledged or ``deadline()``
    (a monotonic time, asked again before each retry) has passed."""
    auth = base64.b64encode(f"{write_key}:".encode()).decode()
    result = Sent()
    lanes: dict[int, list[Request]] = {}
    for request in work.requests:
        lanes.setdefault(request.lane, []).append(request)
    started = time.monotonic()
    async with aiohttp.ClientSession(
        base_url=ingest_url,
        headers={"Authorization": f"Basic {auth}"},
        timeout=aiohttp.ClientTimeout(total=10.0),
    ) as client:
        await asyncio.gather(
            *(
                _lane(client, requests, pace, result, started, deadline)
                for requests in lanes.values()
            )
        )
    return result


async def _lane(
    client: aiohttp.ClientSession,
    requests: list[Request],
    pace: Pace,
    result: Sent,
    started: float,
    deadline: Callable[[], float],
) -> None:
    for request in requests:
        delay = started + pace.at(request.due) - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        now = utc_now()
        items = [stamped(item, now) for item in request.items]
        if request.path == SEGMENT:
            body, kind = orjson.dumps({"batch": items}), CONTENT_TYPES[SEGMENT]
        else:
            body, kind = orjson.dumps(items), CRM_BATCH
        result.sent.update(request.message_ids)
        if await _deliver(client, request.path, body, kind, result, deadline):
            result.acknowledged.update(request.message_ids)


async def _deliver(
    client: aiohttp.ClientSession,
    path: str,
    body: bytes,
    kind: str,
    result: Sent,
    deadline: Callable[[], float],
) -> bool:
    """Post ``body`` until ingest answers 200 (True), refuses it, or the deadline passes."""
    attempt = 0
    while time.monotonic() < deadline():
        wait = BACKOFF_S[min(attempt, len(BACKOFF_S) - 1)]
        try:
            async with client.post(path, data=body, headers={"Content-Type": kind}) as answer:
                text = await answer.text()
                result.answers[str(answer.status)] += 1
                if answer.status == 200:
                    return True
                if answer.status not in RETRYABLE:
                    result.rejected.append(f"{answer.status} {text[:200]}")
                    return False
                if "Retry-After" in answer.headers:
                    result.retry_after += answer.status == 503
                    wait = max(wait, float(answer.headers["Retry-After"]))
        except (aiohttp.ClientError, TimeoutError):
            result.answers["error"] += 1
        attempt += 1
        await asyncio.sleep(wait)
    return False
