"""Who used the machine during a benchmark phase: CPU of a measured process, of the local
broker and database (found by the port they listen on), and of the machine as a whole.

Linux ``/proc`` only; elsewhere every reading is ``None`` and reports leave it out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.benchmarks import BenchmarkError, say

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True, slots=True)
class Services:
    """Local broker and database processes, so their CPU use can be told apart from
    anything else running on the machine."""

    pids: dict[str, int]

    @classmethod
    def find(cls, bootstrap: str, database_url: str) -> Services:
        ports = {"broker": _port(bootstrap.split(",")[0].rpartition(":")[2])}
        url = make_url(database_url)
        if url.get_backend_name() == "postgresql" and url.host in LOCAL_HOSTS:
            ports["database"] = url.port or 5432
        pids = {name: listener_pid(port) for name, port in ports.items() if port}
        return cls({name: pid for name, pid in pids.items() if pid is not None})


@dataclass(frozen=True, slots=True)
class CpuSample:
    wall: float
    own: float
    measured: float | None
    services: dict[str, dict[int, float]]
    """Per service, CPU seconds by process (a database backend may come or go)."""
    machine_busy: float | None
    machine_steal: float | None

    @classmethod
    def take(cls, measured_pid: int | None, services: Services) -> CpuSample:
        return cls(
            wall=time.perf_counter(),
            own=time.process_time(),
            measured=process_cpu(measured_pid) if measured_pid is not None else None,
            services={name: tree_cpu(pid) for name, pid in services.pids.items()},
            machine_busy=machine_busy(),
            machine_steal=machine_steal(),
        )


def cpu_use(before: CpuSample, after: CpuSample, measured: str) -> dict[str, float]:
    """In cores (1.0 = one core busy all along) between two samples: this process, the
    measured process (named ``measured``), each service, the machine and the rest."""
    seconds = max(after.wall - before.wall, 1e-9)
    cpu = {"benchmark process CPU (cores)": round((after.own - before.own) / seconds, 2)}
    if before.measured is not None and after.measured is not None:
        cpu[f"{measured} CPU (cores)"] = round((after.measured - before.measured) / seconds, 2)
    for name, processes in after.services.items():
        if processes and before.services.get(name):
            earlier = before.services[name]
            used = sum(total - earlier.get(pid, 0.0) for pid, total in processes.items())
            cpu[f"{name} CPU (cores)"] = round(used / seconds, 2)
    if before.machine_busy is not None and after.machine_busy is not None:
        machine = (after.machine_busy - before.machine_busy) / seconds
        cpu["machine CPU busy (cores)"] = round(machine, 2)
        known = sum(
            v for k, v in cpu.items() if k.endswith("CPU (cores)") and not k.startswith("machine")
        )
        cpu["anything else on the machine (cores)"] = round(max(0.0, machine - known), 2)
    if before.machine_steal is not None and after.machine_steal is not None:
        stolen = (after.machine_steal - before.machine_steal) / seconds
        cpu["stolen by the hypervisor (cores)"] = round(stolen, 2)
    return cpu


BUSY_MACHINE_CORES = 0.3
"""Cores in use before a run above which its figures are flagged as measured on a busy
machine."""


def kafka_and_postgres() -> tuple[str, str]:
    """The broker and the PostgreSQL server a benchmark runs on (``make services-up``)."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    server_url = os.environ.get("MILEPOST_TEST_DATABASE_URL")
    if not bootstrap or not server_url or make_url(server_url).get_backend_name() != "postgresql":
        raise BenchmarkError(
            "set KAFKA_BOOTSTRAP_SERVERS and MILEPOST_TEST_DATABASE_URL (PostgreSQL): "
            "make services-up; set -a; . .cache/services.env; set +a"
        )
    return bootstrap, server_url


SETTLE_SECONDS = 15.0
"""How long a benchmark waits for the machine to fall below :data:`BUSY_MACHINE_CORES`
before it starts (what the benchmark before it left running: a database being dropped,
the broker deleting topics)."""


async def busy_before(competitors: str) -> tuple[float | None, list[str]]:
    """Cores in use before the run, once they fell below :data:`BUSY_MACHINE_CORES` or
    :data:`SETTLE_SECONDS` passed; when still that many, a note (also said) that other
    processes compete with ``competitors``."""
    deadline = time.monotonic() + SETTLE_SECONDS
    idle_load = await background_load()
    while _busy(idle_load) and time.monotonic() < deadline:
        idle_load = await background_load()
    notes: list[str] = []
    if _busy(idle_load):
        notes.append(
            f"the machine was already busy before the run ({idle_load:.2f} cores in use): "
            f"other processes compete with {competitors}"
        )
        say(f"warning: {notes[-1]}")
    return idle_load, notes


def _busy(load: float | None) -> bool:
    return load is not None and load > BUSY_MACHINE_CORES


async def background_load(seconds: float = 1.0) -> float | None:
    """Cores busy on the machine while the benchmark does nothing."""
    before = machine_busy()
    await asyncio.sleep(seconds)
    after = machine_busy()
    if before is None or after is None:
        return None
    return (after - before) / seconds


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of ``pid``."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss(pid: int) -> int | None:
    """Resident memory of ``pid`` in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def tree_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of ``pid`` and of each of its children (PostgreSQL's backends)."""
    found: dict[int, float] = {}
    own = process_cpu(pid)
    if own is None:
        return found
    found[pid] = own
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def listener_pid(port: int) -> int | None:
    """The pid of the process listening on TCP ``port`` on this machine."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            columns = row.split()
            if columns[3] == "0A" and int(columns[1].rpartition(":")[2], 16) == port:
                inodes.add(f"socket:[{columns[9]}]")
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            links = {os.readlink(fd) for fd in (entry / "fd").iterdir()}
        except OSError:
            continue
        if links & inodes:
            return int(entry.name)
    return None


def machine_busy() -> float | None:
    """CPU seconds the whole machine spent running something (steal excluded)."""
    ticks = _cpu_ticks()
    if ticks is None:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = ticks[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def machine_steal() -> float | None:
    """CPU seconds a virtual machine's hypervisor gave to someone else (0 on bare metal):
    when it is high, every figure of the phase is depressed."""
    ticks = _cpu_ticks()
    return None if ticks is None else ticks[7] / os.sysconf("SC_CLK_TCK")


def _cpu_ticks() -> list[int] | None:
    """user nice system idle iowait irq softirq steal, machine-wide."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except OSError:
        return None
    return [int(v) for v in first[1:9]]


@dataclass(frozen=True, slots=True)
class Phase:
    """One measured phase: how many events, in how long, with what CPU use."""

    events: int
    seconds: float
    cpu: dict[str, float]

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile (0.0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer (``_`` allowed) of at least ``minimum``."""

    def parse(text: str) -> int:
        value = int(text.replace("_", ""))
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}")
        return value

    return parse


def _port(text: str) -> int | None:
    return int(text) if text.isdigit() else None


async def backends_cpu(db: AsyncEngine) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to ``db``'s database (those of the
    measured service, and this benchmark's own polling connection), by pid: unlike the
    server's whole process tree, this leaves out other databases' clients on a shared server.
    """
    async with db.connect() as connection:
        rows = await connection.execute(
            text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        )
        pids = [int(pid) for (pid,) in rows]
    found = {pid: process_cpu(pid) for pid in pids}
    return {pid: cpu for pid, cpu in found.items() if cpu is not None}


def backends_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds the backends used between two readings (a backend that connected in
    between counts from zero)."""
    return sum(total - before.get(pid, 0.0) for pid, total in after.items())
