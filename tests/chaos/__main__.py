"""``python -m tests.chaos``: the fault suite (``make chaos``); see tests/chaos/__init__.py."""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path

from tests.benchmarks import BenchmarkError, say
from tests.benchmarks._system import at_least, kafka_and_postgres
from tests.chaos.runner import run_scenario, table
from tests.chaos.scenarios import SCALES, SCENARIOS, UNDISTURBED, Row
from tests.chaos.system import PrivateServices, Servers


def parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {s.name:<10} {s.summary}" for s in SCENARIOS.values())
    found = argparse.ArgumentParser(
        prog="python -m tests.chaos",
        description="Milepost's services as processes on real Kafka and PostgreSQL under a "
        "seeded load; each scenario's triggers and deliveries compared with an undisturbed "
        "run of the same workload (KAFKA_BOOTSTRAP_SERVERS, MILEPOST_TEST_DATABASE_URL).",
        epilog=f"scenarios:\n{listing}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    found.add_argument("--seed", type=int, default=15, help="workload and fault seed (default: 15)")
    found.add_argument("--scale", choices=sorted(SCALES), default="full", help="default: full")
    found.add_argument(
        "--only", action="append", choices=sorted(SCENARIOS), help="run this scenario (repeatable)"
    )
    found.add_argument("--accounts", type=at_least(4), help="override the scale's accounts")
    found.add_argument("--rate", type=at_least(1), help="override the sustained events/s")
    return found


async def main(args: argparse.Namespace) -> list[Row]:
    bootstrap, server_url = kafka_and_postgres()
    shared = Servers(bootstrap, server_url)
    scale = SCALES[args.scale].override(accounts=args.accounts, rate=args.rate)
    chosen = [SCENARIOS[name] for name in args.only or SCENARIOS]
    say(f"fault suite, seed {args.seed}, {scale}")
    row, undisturbed = await run_scenario(UNDISTURBED, scale, args.seed, shared)
    rows = [row]
    async with AsyncExitStack() as stack:
        private: PrivateServices | None = None
        for scenario in chosen:
            if scenario.private and private is None:
                root = Path(
                    stack.enter_context(tempfile.TemporaryDirectory(prefix="milepost-chaos-"))
                )
                private = PrivateServices(root, random.Random(args.seed))
                stack.push_async_callback(private.down)
                await private.up()
            servers = private.servers if scenario.private and private else shared
            row, _ = await run_scenario(
                scenario, scale, args.seed, servers, private=private, undisturbed=undisturbed
            )
            rows.append(row)
            say(table(rows[-1:]))
    return rows


def entry() -> int:
    args = parser().parse_args()
    try:
        rows = asyncio.run(main(args))
    except BenchmarkError as exc:
        say(f"error: {exc}")
        return 2
    print(table(rows))
    return 0 if all(row.passed for row in rows) else 1


if __name__ == "__main__":
    sys.exit(entry())
