"""The sandbox clock of ``milepost run --sandbox``: an operator moves it forward to watch a
day-based growth path happen (day 3: nudge the admin; day 7: a task for the account owner)
without waiting days.

It is the embedded process's one clock, so the engine's due dates, overdue checks and
escalations, messaging's delays, send windows, quiet hours, budgets and task due dates all
move together. It only moves forward, and its offset is kept in the data folder
(``sandbox-clock``, mode 0600): a data folder that was once a sandbox stays one, and a
restart resumes at the sandbox's time. Only ``milepost run`` on its own embedded bus and
SQLite database can be a sandbox; the separate services (production) always run on the
wall clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from fastapi import APIRouter, params
from pydantic import BaseModel, ConfigDict, Field

from services.admin_api import ERROR_RESPONSES
from shared.clock import ShiftedClock, SystemClock
from shared.durations import format_duration, parse_duration
from shared.errors import Invalid
from shared.private_files import write_private
from shared.settings import RuntimeSettings

CLOCK_FILE = "sandbox-clock"
MAX_STEP = timedelta(days=366)
"""The longest single move forward."""


def sandbox_clock(runtime: RuntimeSettings, *, requested: bool) -> ShiftedClock | None:
    """The sandbox clock when ``requested`` or when the data folder is already a sandbox;
    ``None`` otherwise. ``ValueError`` when the process does not run alone on its own data
    (an external bus or database may be shared with production services)."""
    file = runtime.data_dir / CLOCK_FILE
    if not requested and not file.exists():
        return None
    if runtime.bus == "kafka" or runtime.database_url:
        raise ValueError(
            f"a sandbox runs only on the embedded bus and SQLite database ({file} or "
            "--sandbox was given with MILEPOST_BUS=kafka or MILEPOST_DATABASE_URL)"
        )
    if not file.exists():
        runtime.private_data_dir()
        save_offset(file, timedelta())
    return ShiftedClock(SystemClock(), timedelta(seconds=int(file.read_text().strip() or 0)))


def save_offset(file: Path, offset: timedelta) -> None:
    """Keep the offset in whole seconds, readable by the owner only."""
    write_private(file, str(int(offset.total_seconds())))


class AdvanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    by: str = Field(
        max_length=40,
        description="How far to move the clock forward: an ISO 8601 duration such as P3D "
        "or PT12H, at most P366D at a time.",
        examples=["P3D"],
    )


class ClockOut(BaseModel):
    now: datetime = Field(description="The sandbox's time.")
    ahead_by: str = Field(description="How far it is ahead of the wall clock (ISO 8601).")


def sandbox_router(
    clock: ShiftedClock, file: Path, dependencies: Sequence[params.Depends]
) -> APIRouter:
    """``GET /api/sandbox/clock`` and ``POST /api/sandbox/clock/advance``."""
    router = APIRouter(prefix="/api/sandbox", tags=["sandbox"], dependencies=list(dependencies))

    def shown() -> ClockOut:
        return ClockOut(now=clock.now(), ahead_by=format_duration(clock.offset))

    @router.get("/clock", summary="The sandbox's time", responses=ERROR_RESPONSES)
    async def read_clock() -> ClockOut:
        return shown()

    @router.post(
        "/clock/advance",
        summary="Move the sandbox's clock forward (timers due by then fire)",
        responses={**ERROR_RESPONSES, 422: {"description": "Not a duration it can move by"}},
    )
    async def advance_clock(move: AdvanceIn) -> ClockOut:
        clock.advance(_step(move.by))
        save_offset(file, clock.offset)
        return shown()

    return router


def _step(text: str) -> timedelta:
    """The duration ``text`` names; 422 naming the field and the limit otherwise."""
    try:
        step = parse_duration(text)
    except (ValueError, OverflowError) as exc:
        raise _unprocessable(str(exc)) from exc
    if not timedelta() < step <= MAX_STEP:
        raise _unprocessable(f"must be longer than zero and at most {format_duration(MAX_STEP)}")
    return step


def _unprocessable(message: str) -> Invalid:
    return Invalid(message, field="by")
