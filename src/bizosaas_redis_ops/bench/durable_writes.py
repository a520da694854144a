"""What a durable write costs: plain SETs against SETs each confirmed by replicas (WAIT),
through the stack's REDIS_URL as services connect (Sentinel with topology sentinel).

Numbers, not pass/fail. Writes keys under `bench-durable:` and removes them.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import redis

from bizosaas_redis_ops import tables
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


def measure(outputs: dict[str, Any], replicas: int, timeout_ms: int, writes: int) -> list[list[str]]:
    """Rows (kind, p50, p99, max, writes) for plain and durable writes."""
    if replicas < 1:
        raise BenchmarkError("the stack's durableWriteReplicas is 0: durable writes need topology sentinel")
    client = connect(
        outputs["consumer_secrets"]["REDIS_URL"], outputs.get("master_name"), socket_timeout=timeout_ms / 1000 + 5
    )
    rows = []
    try:
        for label, durability in (("plain", Durability(0)), ("durable", Durability(replicas, timeout_ms))):
            _timings(client, durability, min(100, writes), f"warm-{label}")
            values = sorted(_timings(client, durability, writes, label))
            p99 = values[min(len(values) - 1, round(0.99 * len(values)))]
            name = label if label == "plain" else f"durable (WAIT {replicas} replica(s))"
            rows.append([name, f"{statistics.median(values):.2f}", f"{p99:.2f}", f"{values[-1]:.2f}", str(writes)])
    finally:
        for keys in _chunks(list(client.scan_iter(match=f"{PREFIX}*", count=1000)), 1000):
            client.unlink(*keys)
    return rows


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def table(rows: list[list[str]]) -> str:
    return tables.render(["write", "p50 ms", "p99 ms", "max ms", "writes"], rows)
