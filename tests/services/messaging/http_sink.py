"""A real HTTP server for the messaging tests and benchmark: it records every request and
answers with scripted responses (``200 ok`` once the script is used up)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn

from tests.processes import free_port

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Received:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int = 200
    body: bytes = b"ok"
    headers: tuple[tuple[str, str], ...] = ()
    delay_seconds: float = 0.0


@dataclass
class Sink:
    """The ASGI application; ``url`` is set once it listens."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    script: deque[Answer] = field(default_factory=deque)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    record: bool = True

    def answer(self, *answers: Answer) -> None:
        self.script.extend(answers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if self.record:
            query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            self.received.append(Received(scope["path"], query, headers, body))
            self.arrived.set()
        answer = self.script.popleft() if self.script else Answer()
        if answer.delay_seconds:
            await asyncio.sleep(answer.delay_seconds)
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(k.encode(), v.encode()) for k, v in answer.headers],
            }
        )
        await send({"type": "http.response.body", "body": answer.body})


@asynccontextmanager
async def running_sink(sink: Sink | None = None) -> AsyncIterator[Sink]:
    """Serve ``sink`` on a free local port for the duration."""
    app = sink or Sink()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    app.url = f"http://127.0.0.1:{port}"
    try:
        yield app
    finally:
        server.should_exit = True
        await task


def main() -> None:
    """``python -m tests.services.messaging.http_sink PORT``: a sink that answers ``200 ok``
    and keeps nothing (the benchmark's receiver, in a process of its own)."""
    port = int(sys.argv[1])
    uvicorn.run(
        Sink(record=False),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
    )


if __name__ == "__main__":
    main()
