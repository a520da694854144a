"""Benchmarks of a deployment: smoke suite duration and redis-benchmark throughput.

Numbers, not pass/fail: the targets (smoke under 15 s) are read off the table.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from bizosaas_redis_ops import results, tables
from bizosaas_redis_ops.check import smoke


@dataclass
class Row:
    name: str
    unit: str
    values: list[float]

    def cells(self) -> list[str]:
        v = self.values
        return [self.name, self.unit, f"{min(v):.1f}", f"{statistics.median(v):.1f}", f"{max(v):.1f}", str(len(v))]


def smoke_timings(target: smoke.Target, runs: int) -> list[Row]:
    per_scenario: dict[str, list[float]] = {}
    totals = []
    for _ in range(runs):
        start = time.perf_counter()
        _, results = smoke.run_suite(target)
        totals.append(time.perf_counter() - start)
        for r in results:
            per_scenario.setdefault(r.scenario, []).append(r.seconds * 1000)
            if not r.passed:
                raise smoke.SmokeError(f"scenario {r.scenario} failed: {r.reason}")
    rows = [Row(f"smoke: {name}", "ms", values) for name, values in per_scenario.items()]
    rows.append(Row("smoke: whole suite", "s", totals))
    return rows


def redis_benchmark(url: str, runs: int, requests: int = 20000, pipeline: int = 1) -> list[Row]:
    """SET/GET requests per second through the published port (redis-benchmark, 50 clients).

    Only where no password is needed: redis-benchmark takes one only on its command line,
    which every process list shows.
    """
    parts = urlsplit(url)
    if shutil.which("redis-benchmark") is None or parts.password:
        return []
    args = [
        "redis-benchmark",
        "-h",
        parts.hostname or "127.0.0.1",
        "-p",
        str(parts.port or 6379),
        "-n",
        str(requests),
        "-P",
        str(pipeline),
        "-t",
        "set,get",
        "-q",
        "--csv",
    ]
    found: dict[str, list[float]] = {}
    for _ in range(runs):
        out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
        for line in out.splitlines()[1:]:
            cells = [c.strip('"') for c in line.split(",")]
            found.setdefault(cells[0], []).append(float(cells[1]) / 1000)
    return [Row(f"redis-benchmark {name} (P{pipeline})", "k req/s", v) for name, v in found.items()]


def table(rows: list[Row]) -> str:
    return tables.render(["benchmark", "unit", "min", "median", "max", "runs"], [r.cells() for r in rows])


def figures(rows: list[Row]) -> list[dict[str, object]]:
    """The rows for the results file."""
    return [results.figure(row.name, row.values, row.unit) for row in rows]
