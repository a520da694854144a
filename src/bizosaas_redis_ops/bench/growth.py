"""How restarts, replacements, forks and rewrites cost more as the dataset grows."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bizosaas_redis import redis_conf
from bizosaas_redis.constants import REDIS_GID, REDIS_UID
from bizosaas_redis.settings import Settings
from bizosaas_redis_ops import results, tables
from bizosaas_redis_ops.bench.lab import Lab, wait_for
from bizosaas_redis_ops.bench.probes import PeakRss, Probe
from bizosaas_redis_ops.bench.runner import CLIENTS, BenchmarkError
from bizosaas_redis_ops.deploy import docker_engine

MB = 1024**2
VALUE_SIZES = (256, 1024, 4096)  # sessions, cache entries, LLM answers
BATCH = 1000


@dataclass(frozen=True)
class Growth:
    target_mb: int
    used_mb: float
    keys: int
    fill_s: float
    rdb_mb: float
    bgsave_fork_ms: float
    bgsave_s: float
    rewrite_fork_ms: float
    rewrite_s: float
    peak_rss_mb: float
    limit_mb: float
    p99_ms_load: float  # the probe under the write load, no fork
    p99_ms_rewrite: float  # the probe under the write load during the rewrite
    stop_s: float
    redis_load_s: float  # as Redis logs it
    first_command_s: float  # from the start of the container
    healthy_s: float
    replace_window_s: float  # the longest a client waited during a replacement
    replace_up_s: float  # what `up` took
    disk_mb_s: float
    load_at_disk_rate_s: float


def _used_without_clients(client: redis.Redis) -> int:
    # The filling client's own buffers count in used_memory until its pipeline is answered, and
    # the AOF buffer (in mem_not_counted_for_evict) holds a whole batch until everysec writes it.
    memory = client.info("memory")
    transient = int(memory.get("mem_clients_normal", 0)) + int(memory.get("mem_not_counted_for_evict", 0))
    return int(memory["used_memory"]) - transient


def _fill(client: redis.Redis, target_bytes: int) -> int:
    sizes = itertools.cycle(VALUE_SIZES)
    keys = 0
    while _used_without_clients(client) < target_bytes:
        pipe = client.pipeline(transaction=False)
        for _ in range(BATCH):
            pipe.set(f"bench:data:{keys}", os.urandom(next(sizes)))
            keys += 1
        pipe.execute()
    return keys


def _timed(admin: redis.Redis, start: Callable[[], object]) -> float:
    """Seconds from starting a background save or rewrite until it is done."""
    _wait_persistence(admin)
    started = time.monotonic()
    start()
    time.sleep(0.05)  # it reports itself in progress from the next INFO on
    _wait_persistence(admin)
    return time.monotonic() - started


def _wait_persistence(client: redis.Redis) -> None:
    while True:
        info = client.info("persistence")
        busy = ("rdb_bgsave_in_progress", "aof_rewrite_in_progress", "aof_rewrite_scheduled")
        if not any(int(info.get(key, 0)) for key in busy):
            return
        time.sleep(0.05)


_LOADED = re.compile(r"DB loaded from (?:disk|append only file|base file [^:]+): ([\d.]+) seconds")


def _disk_rate(path: Path) -> float:
    """MB/s reading `path` past the page cache (O_DIRECT), as a cold start would."""
    started = time.monotonic()
    subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=4M", "iflag=direct"], check=True, capture_output=True)
    return path.stat().st_size / MB / max(time.monotonic() - started, 1e-6)


def check_sizes(settings: Settings, sizes: list[int]) -> None:
    """Before anything is deployed: a dataset must fit, or it is evicted while filled."""
    for size_mb in sizes:
        if size_mb * MB >= 0.9 * settings.maxmemory:
            raise BenchmarkError(
                f"--sizes {size_mb}: a dataset must stay below 90 % of maxmemory ({settings.maxmemory // MB} MB "
                "here) or it is evicted while filled; raise it with --set maxmemory=…"
            )


def measure(lab: Lab, size_mb: int, progress: Callable[[str], None] = lambda _: None) -> Growth:
    """Fill a fresh deployment to `size_mb`, then time what grows with the data: a BGSAVE,
    an AOF rewrite under a write load, a restart and a replacement."""
    settings = lab.deployed_settings()
    check_sizes(settings, [size_mb])
    progress(f"{size_mb} MB: deploying")
    lab.deploy()
    admin = lab.admin()
    socket_path = lab.socket_on_host()  # the volume outlives restarts and replacements

    def socket_client() -> redis.Redis:
        return _client_like(admin, unix_socket_path=socket_path, socket_timeout=10)

    progress(f"{size_mb} MB: filling")
    started = time.monotonic()
    keys = _fill(socket_client(), size_mb * MB)
    found: dict[str, float] = {"fill_s": time.monotonic() - started}
    found["used_mb"] = int(admin.info("memory")["used_memory"]) / MB
    progress(f"{size_mb} MB: BGSAVE")
    found["bgsave_s"] = _timed(admin, admin.bgsave)
    found["bgsave_fork_ms"] = int(admin.info("stats")["latest_fork_usec"]) / 1000
    progress(f"{size_mb} MB: AOF rewrite under a write load")
    found |= _rewrite_under_load(lab, settings, admin, socket_client, keys)
    files, found_files = _files(lab, settings)
    found |= found_files
    progress(f"{size_mb} MB: restart")
    found |= _restart(lab, settings, socket_client)
    found["load_at_disk_rate_s"] = files / MB / found["disk_mb_s"]
    progress(f"{size_mb} MB: replacement (`up` with a changed label)")
    found |= _replacement(lab, admin)
    return Growth(target_mb=size_mb, keys=keys, **found)


def _rewrite_under_load(
    lab: Lab, settings: Settings, admin: redis.Redis, socket_client: Callable[[], redis.Redis], keys: int
) -> dict[str, float]:
    """The probe's p99 under a redis-benchmark write load, then during an AOF rewrite (or
    BGSAVE) under it, with the container's peak RSS."""
    engine = lab.engine
    container = engine.containers.get(lab.container_name)
    with lab.disposable_user() as (user, password):
        argv = ["redis-benchmark", "-h", lab.container_name, "-p", str(redis_conf.CONTAINER_PORT)]
        argv += ["-c", str(CLIENTS), "--user", user, "-a", password, "-r", str(keys), "-l", "-q"]
        load = engine.containers.run(
            container.attrs["Config"]["Image"],
            [*argv, "SET", "bench:data:__rand_int__", "w" * 1024],
            entrypoint="",
            network=lab.network,
            user=f"{REDIS_UID}:{REDIS_GID}",
            name=f"{lab.prefix}-load",
            detach=True,
        )
        try:
            under_load = Probe(socket_client)
            with under_load.running():
                time.sleep(2)
            rewrite = Probe(socket_client)
            _wait_persistence(admin)  # not measured: a save still running from before
            with PeakRss(str(container.id)).sampling() as rss, rewrite.running():
                rewrite_s = _timed(admin, admin.bgrewriteaof if settings.appendonly else admin.bgsave)
            rewrite_fork_ms = int(admin.info("stats")["latest_fork_usec"]) / 1000
        finally:
            load.remove(force=True, v=True)
    return {
        "rewrite_s": rewrite_s,
        "rewrite_fork_ms": rewrite_fork_ms,
        "peak_rss_mb": rss.peak / MB,
        "limit_mb": container.attrs["HostConfig"]["Memory"] / MB,
        "p99_ms_load": under_load.p99_ms(),
        "p99_ms_rewrite": rewrite.p99_ms(),
    }


def _files(lab: Lab, settings: Settings) -> tuple[int, dict[str, float]]:
    """The bytes a start reads (the AOF folder when AOF is on, else the snapshot), the
    snapshot's size and the disk's rate reading the biggest file."""
    mountpoint = Path(lab.engine.volumes.get(lab.volume_name).attrs["Mountpoint"])
    files = [f for f in [mountpoint / "dump.rdb", *sorted((mountpoint / redis_conf.AOF_DIR).glob("*"))] if f.is_file()]
    biggest = max(files, key=lambda f: f.stat().st_size)
    loaded = sum(f.stat().st_size for f in files if (f.name == "dump.rdb") != settings.appendonly)
    rdb_mb = (mountpoint / "dump.rdb").stat().st_size / MB
    return loaded, {"disk_mb_s": _disk_rate(biggest), "rdb_mb": rdb_mb}


def _restart(lab: Lab, settings: Settings, socket_client: Callable[[], redis.Redis]) -> dict[str, float]:
    """Stop, start: until the first command is answered, until healthy, and Redis's own load time."""
    container = lab.engine.containers.get(lab.container_name)
    started = time.monotonic()
    container.stop(timeout=settings.stop_grace_period)
    stop_s = time.monotonic() - started
    since = int(time.time())
    started = time.monotonic()
    container.start()
    wait_for(socket_client(), timeout=600)
    first_command_s = time.monotonic() - started
    docker_engine.wait_healthy(lab.engine, lab.container_name, timeout=600, poll=0.02)
    healthy_s = time.monotonic() - started
    logged = _LOADED.findall(container.logs(since=since).decode(errors="replace"))
    return {
        "stop_s": stop_s,
        "first_command_s": first_command_s,
        "healthy_s": healthy_s,
        "redis_load_s": float(logged[-1]) if logged else float("nan"),
    }


def _replacement(lab: Lab, admin: redis.Redis) -> dict[str, float]:
    """`up` with a changed label replaces the container: what it took, and the longest a
    client waited."""
    replace = Probe(lambda: _client_like(admin, port=lab.port, socket_timeout=10, socket_connect_timeout=1))
    with replace.running():
        started = time.monotonic()
        lab.deploy(f"labels={{com.bizosaas.bench.run: '{time.time_ns()}'}}")
        replace_up_s = time.monotonic() - started
        # The probe's gap closes with its first answer from the new container.
        answered = len(replace.latencies_ms)
        _until(lambda: len(replace.latencies_ms) > answered, 600)
    return {"replace_up_s": replace_up_s, "replace_window_s": replace.longest_gap_s}


def _client_like(admin: redis.Redis, **kwargs: Any) -> redis.Redis:
    """A client with the admin's credentials, reaching Redis another way.

    It does not retry by itself (redis-py's default backs off up to 1 s between ten
    tries): the waits measured are Redis's, and the callers retry every 10-20 ms."""
    found = admin.connection_pool.connection_kwargs
    return redis.Redis(
        username=found.get("username"), password=found.get("password"), retry=Retry(NoBackoff(), 0), **kwargs
    )


def _until(condition: Callable[[], object], timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise BenchmarkError(f"still waiting after {timeout:.0f} s")
        time.sleep(0.02)
    return time.monotonic()


# What the table and the results file show, one row each: (label, field, unit).
QUANTITIES: tuple[tuple[str, str, str], ...] = (
    ("dataset (used_memory)", "used_mb", "MB"),
    ("keys", "keys", ""),  # a count
    ("fill", "fill_s", "s"),
    ("RDB", "rdb_mb", "MB"),
    ("BGSAVE: fork", "bgsave_fork_ms", "ms"),
    ("BGSAVE: total", "bgsave_s", "s"),
    ("AOF rewrite under writes: fork", "rewrite_fork_ms", "ms"),
    ("AOF rewrite under writes: total", "rewrite_s", "s"),
    ("peak RSS during the rewrite", "peak_rss_mb", "MB"),
    ("container memory limit", "limit_mb", "MB"),
    ("probe p99 under writes", "p99_ms_load", "ms"),
    ("probe p99 under writes and the rewrite", "p99_ms_rewrite", "ms"),
    ("stop", "stop_s", "s"),
    ("load, as Redis logs it", "redis_load_s", "s"),
    ("load at the disk's rate", "load_at_disk_rate_s", "s"),
    ("restart: first answered command", "first_command_s", "s"),
    ("restart: healthy", "healthy_s", "s"),
    ("replacement (bizosaas-redis up): clients waited", "replace_window_s", "s"),
    ("replacement (bizosaas-redis up): up took", "replace_up_s", "s"),
    ("disk read rate past the page cache", "disk_mb_s", "MB/s"),
)
DECIMALS = {"ms": 2, "s": 3}  # any other unit: whole numbers


def _label(label: str, unit: str) -> str:
    return f"{label}, {unit}" if unit else label


def table(rows: list[Growth]) -> str:
    # One row per measurement, one column per dataset: it fits a terminal.
    return tables.render(
        ["measured", *(f"{g.target_mb} MB" for g in rows)],
        [
            [_label(label, unit), *(f"{getattr(g, field):.{DECIMALS.get(unit, 0)}f}" for g in rows)]
            for label, field, unit in QUANTITIES
        ],
    )


def figures(rows: list[Growth]) -> list[dict[str, object]]:
    """For the results file: one figure per quantity and dataset size (one run each)."""
    return [
        results.figure(
            f"{label}, {g.target_mb} MB",
            [float(getattr(g, field))],
            unit,
            row=_label(label, unit),
            column=f"{g.target_mb} MB",
        )
        for label, field, unit in QUANTITIES
        for g in rows
    ]
