"""``python -m tests.benchmarks``: run every benchmark in this package in turn.

Each prints a table (figure, limit, ratio, goal) on stdout followed by one JSON line;
progress goes to stderr. Each runs on the event loop the services run on (uvloop). Exit
status: 0 when every benchmark ran (whether or not it met its goal), 1 when one failed, 2
for a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import traceback
from collections.abc import Sequence

import orjson

import tests.benchmarks as package
from services.command_line import run_on_fastest_loop
from tests.benchmarks import Benchmark, BenchmarkError, format_report, report_json, say


def discover() -> dict[str, Benchmark]:
    """Every public module of the package, by benchmark name, in module-name order."""
    found: dict[str, Benchmark] = {}
    for module_info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package.__name__}.{module_info.name}")
        benchmark = getattr(module, "BENCHMARK", None)
        if not isinstance(benchmark, Benchmark):
            raise TypeError(
                f"{module.__name__} defines no BENCHMARK = Benchmark(...); "
                "helper modules must start with '_'"
            )
        if benchmark.name in found:
            raise TypeError(f"two benchmarks are named {benchmark.name!r}")
        found[benchmark.name] = benchmark
    return found


def build_parser(benchmarks: dict[str, Benchmark]) -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<12} {b.summary}" for name, b in benchmarks.items())
    parser = argparse.ArgumentParser(
        prog="python -m tests.benchmarks",
        description=(
            "Milepost benchmarks on the real broker (KAFKA_BOOTSTRAP_SERVERS) and database "
            "(MILEPOST_TEST_DATABASE_URL), each figure beside its limit.\n\n"
            f"benchmarks:\n{listing}"
        ),
        epilog=(
            "examples:\n"
            "  set -a; . .cache/services.env; set +a\n"
            "  python -m tests.benchmarks                     # all of them\n"
            "  python -m tests.benchmarks --only ingest --events 20000"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=list(benchmarks),
        metavar="NAME",
        help="run only this benchmark (repeatable); one of: " + ", ".join(benchmarks),
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    for name, benchmark in benchmarks.items():
        benchmark.add_arguments(parser.add_argument_group(f"{name} benchmark"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    benchmarks = discover()
    args = build_parser(benchmarks).parse_args(argv)
    if args.list:
        for name, benchmark in benchmarks.items():
            print(f"{name}\t{benchmark.summary}")
        return 0
    selected = [benchmarks[name] for name in dict.fromkeys(args.only or benchmarks)]
    failed: list[str] = []
    for benchmark in selected:
        say(f"\n>> benchmark {benchmark.name}: {benchmark.summary}")
        try:
            report = run_on_fastest_loop(benchmark.run(args))
        except KeyboardInterrupt:
            say(f"!! benchmark {benchmark.name} interrupted")
            return 130
        except BenchmarkError as exc:
            say(f"!! benchmark {benchmark.name} FAILED: {exc}")
            failed.append(benchmark.name)
            continue
        except Exception:
            say(f"!! benchmark {benchmark.name} FAILED with an unexpected error:")
            traceback.print_exc()
            failed.append(benchmark.name)
            continue
        print(format_report(report), flush=True)
        print(orjson.dumps(report_json(report)).decode(), flush=True)
    if failed:
        say(f"\nfailed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
