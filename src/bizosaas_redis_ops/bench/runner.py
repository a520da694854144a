"""redis-benchmark, run from a client container so every path uses the same client binary.

The client comes from the server's own image (the official images ship redis-benchmark,
the offline ones too), so client and server are one version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import docker

from bizosaas_redis.constants import REDIS_GID, REDIS_UID
from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis_ops.deploy.docker_engine import run_to_completion

CLIENTS = 50  # redis-benchmark's default; the seed's services hold about as many
KEYSPACE = 100_000  # __rand_int__ ranges over this many keys
CACHE_VALUE = "c" * 1024  # an API/LLM cache entry, about 1 KB of JSON
SESSION_VALUE = "s" * 256

# workload -> (row label, command). Writes come before the reads that need them.
WORKLOADS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "cache": (
        ("SETEX", ("SETEX", "bench:cache:__rand_int__", "3600", CACHE_VALUE)),
        ("GET", ("GET", "bench:cache:__rand_int__")),
    ),
    "session": (
        ("HSET", ("HSET", "bench:session:__rand_int__", "user", "u42", "data", SESSION_VALUE)),
        ("HGETALL", ("HGETALL", "bench:session:__rand_int__")),
        ("EXPIRE", ("EXPIRE", "bench:session:__rand_int__", "86400")),
    ),
    "queue": (
        ("XADD", ("XADD", "bench:events", "MAXLEN", "~", "10000", "*", "payload", SESSION_VALUE)),
        ("XREADGROUP", ("XREADGROUP", "GROUP", "bench", "c1", "COUNT", "1", "STREAMS", "bench:events", ">")),
        ("LPUSH", ("LPUSH", "bench:queue", SESSION_VALUE)),
        ("RPOP", ("RPOP", "bench:queue")),
    ),
}


class BenchmarkError(BizosaasRedisError):
    pass


@dataclass(frozen=True)
class Client:
    """Where the client container runs and how it reaches the server."""

    network: str  # "host" (loopback), a Docker network name, or "none" (socket only)
    host: str | None = None
    port: int | None = None
    socket_volume: str | None = None
    socket_path: str | None = None

    def args(self) -> list[str]:
        if self.socket_path:
            return ["-s", self.socket_path]
        return ["-h", self.host or "127.0.0.1", "-p", str(self.port)]


@dataclass(frozen=True)
class Measured:
    rps: float
    p50_ms: float
    p99_ms: float
    p999_ms: float


_THROUGHPUT = re.compile(r"throughput summary: ([\d.]+|inf) requests per second")
_PERCENTILE = re.compile(r"^\s*([\d.]+)% <= ([\d.]+) milliseconds", re.MULTILINE)
_SUMMARY = re.compile(r"avg\s+min\s+p50\s+p95\s+p99\s+max\s*\n\s*([\d.\s]+)")


def parse(output: str) -> Measured:
    """The summary of one redis-benchmark test (default, non-CSV output).

    p99.9 is the first step of the latency distribution at or above 99.9 % (HdrHistogram
    steps: 99.902 % usually), so it errs on the slow side.
    """
    throughput = _THROUGHPUT.search(output)
    summary = _SUMMARY.search(output)
    distribution = output.split("Cumulative distribution", 1)[0]
    p999 = next((float(ms) for pct, ms in _PERCENTILE.findall(distribution) if float(pct) >= 99.9), None)
    if throughput is None or summary is None or p999 is None:
        raise BenchmarkError(f"redis-benchmark printed no summary; its output ends: {output[-300:]!r}")
    if throughput.group(1) == "inf":
        # redis-benchmark times whole milliseconds: a run shorter than one cannot be timed.
        raise BenchmarkError("a test ended within a millisecond, too short to time: raise --requests")
    _avg, _min, p50, _p95, p99, _max = (float(v) for v in summary.group(1).split()[:6])
    return Measured(float(throughput.group(1)), p50, p99, p999)


def run(
    engine: docker.DockerClient,
    image: str,
    client: Client,
    command: tuple[str, ...],
    requests: int,
    pipeline: int,
    auth: tuple[str, str] | None = None,
) -> Measured:
    """One redis-benchmark test. `auth` is a disposable user: its password shows in the
    client's argv (redis-benchmark reads none from the environment), so never a real one."""
    argv = ["redis-benchmark", *client.args(), "-c", str(CLIENTS), "-n", str(requests), "-P", str(pipeline)]
    argv += ["-r", str(KEYSPACE)]
    if auth:
        argv += ["--user", auth[0], "-a", auth[1]]
    volumes = (
        {client.socket_volume: {"bind": client.socket_path.rsplit("/", 1)[0], "mode": "rw"}}
        if (client.socket_volume and client.socket_path)
        else None
    )
    code, text = run_to_completion(
        engine,
        image,
        [*argv, *command],
        entrypoint="",
        network_mode=client.network if client.network in ("host", "none") else None,
        network=None if client.network in ("host", "none") else client.network,
        # Redis's group reaches the socket; nothing here needs root.
        user=f"{REDIS_UID}:{REDIS_GID}",
        volumes=volumes,
    )
    if code != 0:
        raise BenchmarkError(f"redis-benchmark failed: {text.strip()[-300:]}")
    return parse(text.replace("\r", "\n"))
