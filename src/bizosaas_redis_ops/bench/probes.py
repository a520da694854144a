"""What the growth benchmark and the fault tests sample while something else runs:
a client's latencies and waits, and a container's peak memory."""

from __future__ import annotations

import contextlib
import itertools
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bizosaas_redis_ops.bench.runner import BenchmarkError


@dataclass
class Probe:
    """One client issuing SETs back to back: its latencies and its longest wait for an answer."""

    connect: Callable[[], redis.Redis]
    latencies_ms: list[float] = field(default_factory=list)
    longest_gap_s: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _run(self) -> None:
        client: redis.Redis | None = None
        last_ok = time.monotonic()
        for n in itertools.count():
            if self._stop.is_set():
                return
            started = time.perf_counter()
            try:
                client = client or self.connect()
                client.set("bench:probe", n)
            except (redis.RedisError, OSError):
                client = None
                time.sleep(0.01)
                continue
            now = time.monotonic()
            self.latencies_ms.append((time.perf_counter() - started) * 1000)
            self.longest_gap_s = max(self.longest_gap_s, now - last_ok)
            last_ok = now
            time.sleep(0.001)

    @contextlib.contextmanager
    def running(self) -> Iterator[Probe]:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=30)

    def p99_ms(self) -> float:
        if len(self.latencies_ms) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies_ms, n=100)[98]


@dataclass
class PeakRss:
    """The container's peak anonymous memory (what the OOM killer counts), sampled every 20 ms."""

    container_id: str
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def _stat(self) -> Path | None:
        for base in (
            Path("/sys/fs/cgroup/memory/docker"),
            Path("/sys/fs/cgroup/system.slice"),
            Path("/sys/fs/cgroup/docker"),
        ):
            for name in (self.container_id, f"docker-{self.container_id}.scope"):
                if (base / name / "memory.stat").exists():
                    return base / name / "memory.stat"
        return None

    def _run(self, stat: Path) -> None:
        while not self._stop.is_set():
            values = dict(line.split() for line in stat.read_text().splitlines())
            self.peak = max(self.peak, int(values.get("total_rss", values.get("rss", values.get("anon", 0)))))
            time.sleep(0.02)

    @contextlib.contextmanager
    def sampling(self) -> Iterator[PeakRss]:
        stat = self._stat()
        if stat is None:
            raise BenchmarkError("the container's memory cgroup was not found under /sys/fs/cgroup")
        thread = threading.Thread(target=self._run, args=(stat,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            thread.join(timeout=5)
