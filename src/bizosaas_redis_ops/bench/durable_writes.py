"""What a durable write costs: plain SETs against SETs each confirmed by replicas (WAIT),
through the stack's REDIS_URL as services connect (Sentinel with topology sentinel).

Numbers, not pass/fail. Writes keys under `bench-durable:` and removes them.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

import redis

from bizosaas_redis_ops import results, tables
from bizosaas_redis_ops.bench.runner import BenchmarkError
from bizosaas_redis_patterns import Durability, connect

PREFIX = "bench-durable:"


def _timings(client: redis.Redis, durability: Durability, writes: int, label: str) -> list[float]:
    """Milliseconds per write, each a SET and (durable) its WAIT on the same connection."""
    found = []
    for n in range(writes):
        key = f"{PREFIX}{label}:{n}"

        def write(pipe: Any, key: str = key, n: int = n) -> object:
            return pipe.set(key, n)

        started = time.perf_counter()
        durability.write(client, write)
        found.append((time.perf_counter() - started) * 1000)
    return found


@dataclass(frozen=True)
class Row:
    kind: str
    ms: list[float]  # each write's, sorted

    @property
    def p50(self) -> float:
        return statistics.median(self.ms)

    @property
    def p99(self) -> float:
        return self.ms[min(len(self.ms) - 1, round(0.99 * len(self.ms)))]


def measure(outputs: dict[str, Any], replicas: int, timeout_ms: int, writes: int) -> list[Row]:
    """Plain and durable writes' latencies."""
    if replicas < 1:
        raise BenchmarkError("the stack's durableWriteReplicas is 0: durable writes need topology sentinel")
    client = connect(
        outputs["consumer_secrets"]["REDIS_URL"], outputs.get("master_name"), socket_timeout=timeout_ms / 1000 + 5
    )
    rows = []
    try:
        for label, durability in (("plain", Durability(0)), ("durable", Durability(replicas, timeout_ms))):
            _timings(client, durability, min(100, writes), f"warm-{label}")
            name = "plain SET" if label == "plain" else f"durable SET + WAIT {replicas} {timeout_ms}"
            rows.append(Row(name, sorted(_timings(client, durability, writes, label))))
    finally:
        for keys in _chunks(list(client.scan_iter(match=f"{PREFIX}*", count=1000)), 1000):
            client.unlink(*keys)
    return rows


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def table(rows: list[Row]) -> str:
    return tables.render(
        ["write", "p50 ms", "p99 ms", "max ms", "writes"],
        [[r.kind, f"{r.p50:.2f}", f"{r.p99:.2f}", f"{r.ms[-1]:.2f}", str(len(r.ms))] for r in rows],
    )


def figures(rows: list[Row]) -> list[dict[str, object]]:
    """For the results file: each kind's p50, p99 and max (one run of `writes` writes)."""
    return [
        results.figure(f"{r.kind}: {column}", [value], "ms", row=r.kind, column=f"{column} ms", writes=len(r.ms))
        for r in rows
        for column, value in (("p50", r.p50), ("p99", r.p99), ("max", r.ms[-1]))
    ]
