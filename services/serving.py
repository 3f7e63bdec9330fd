"""Run an ASGI app with uvicorn inside an already running event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any

import uvicorn
from fastapi import FastAPI


async def serve(
    app: FastAPI,
    *,
    host: str,
    port: int,
    background: Sequence[Coroutine[Any, Any, None]] = (),
) -> None:
    """Serve until SIGINT/SIGTERM, with ``background`` tasks cancelled on the way out.

    In-flight requests finish before it returns.
    """
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, server_header=False
    )
    tasks = [asyncio.create_task(work) for work in background]
    try:
        await uvicorn.Server(config).serve()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
