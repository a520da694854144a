"""Health of a running Redis against the stack's alert thresholds.

`evaluate` is pure: two INFO samples and the seconds between them in, metrics with
OK/WARN/CRIT out; `alerts.py` turns the same thresholds into Prometheus rules.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import redis

from bizosaas_redis import handover, topology
from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings import Settings
from bizosaas_redis_ops import tables

OK, WARN, CRIT = "OK", "WARN", "CRIT"
SEVERITY = {OK: 0, WARN: 1, CRIT: 2}
# Below this many lookups in the interval, the hit rate since start says more.
# Fewer lookups than this in the sampled window give no hit rate: too few to judge.
MIN_LOOKUPS_FOR_HIT_RATE = 100


class MonitorError(BizosaasRedisError):
    """Redis could not be read: as bad as CRIT."""

    exit_code = 2


@dataclass(frozen=True)
class Metric:
    name: str
    value: str
    threshold: str
    status: str
    number: float | None = None


def _pct(part: float, whole: float) -> float:
    return 100.0 * part / whole


def _grade_high(value: float, warn: float, crit: float) -> str:
    return CRIT if value > crit else WARN if value > warn else OK


def _grade_low(value: float, warn: float, crit: float) -> str:
    return CRIT if value < crit else WARN if value < warn else OK


Sample = dict[str, Any]


def evaluate(
    first: Sample,
    second: Sample,
    seconds: float,
    settings: Settings,
    now: float | None = None,
    sentinel: tuple[Sample, Sample] | None = None,
) -> list[Metric]:
    """Metrics from two INFO samples `seconds` apart (second is the newer); with topology
    sentinel, also from two `SENTINEL MASTER` samples of a Sentinel."""
    now = time.time() if now is None else now
    seconds = max(seconds, 1e-6)
    metrics = [
        *_memory(first, second, seconds, settings),
        _clients(second, settings),
        _hit_rate(first, second, seconds, settings),
        _evictions(first, second, seconds, settings),
        _rejected(first, second, seconds),
        _last_save(second, settings, now),
        _aof(second),
        _role(second),
    ]
    if settings.topology == "sentinel":
        metrics += _replication(second, settings)
        if sentinel is not None:
            metrics += _sentinel_view(*sentinel, settings)
    uptime = float(second.get("uptime_in_seconds", 0))
    metrics.append(Metric("uptime", f"{uptime / 3600:.1f} h" if uptime >= 3600 else f"{uptime:.0f} s", "—", OK, uptime))
    return metrics


def _memory(first: Sample, second: Sample, seconds: float, settings: Settings) -> list[Metric]:
    used, maxmemory = float(second["used_memory"]), float(second.get("maxmemory", 0))
    if maxmemory <= 0:
        return [Metric("memory used", f"{used / 1024**2:.1f} MB, no maxmemory", "maxmemory set", WARN)]
    pct = _pct(used, maxmemory)
    shown = f"{used / 1024**2:.1f} MB of {maxmemory / 1024**2:.0f} MB ({pct:.1f} %)"
    if settings.role != "durable":
        return [
            Metric(
                "memory used",
                shown,
                f"> {settings.alert_memory_percent} % / {settings.alert_memory_critical_percent} %",
                _grade_high(pct, settings.alert_memory_percent, settings.alert_memory_critical_percent),
                pct,
            )
        ]
    # Full means refused writes (noeviction): critical from the warning threshold on.
    refused = _oom_errors(second) - _oom_errors(first)
    return [
        Metric(
            "memory used (durable: refuses writes when full)",
            shown,
            f"> {settings.alert_memory_percent} % is CRIT",
            CRIT if pct > settings.alert_memory_percent else OK,
            pct,
        ),
        Metric(
            "writes refused (OOM)",
            f"{refused / seconds:.1f}/s ({_oom_errors(second)} since start)",
            "> 0",
            CRIT if refused > 0 else OK,
            refused / seconds,
        ),
    ]


def _clients(second: Sample, settings: Settings) -> Metric:
    clients, maxclients = float(second["connected_clients"]), float(second.get("maxclients", 10000))
    pct = _pct(clients, maxclients)
    return Metric(
        "clients",
        f"{int(clients)} of {int(maxclients)} ({pct:.1f} %)",
        f"> {settings.alert_clients_percent} % / {settings.alert_clients_critical_percent} %",
        _grade_high(pct, settings.alert_clients_percent, settings.alert_clients_critical_percent),
        pct,
    )


def _hit_rate(first: Sample, second: Sample, seconds: float, settings: Settings) -> Metric:
    d_hits = float(second["keyspace_hits"]) - float(first["keyspace_hits"])
    d_misses = float(second["keyspace_misses"]) - float(first["keyspace_misses"])
    threshold = f"< {settings.alert_hit_rate_percent} % / {settings.alert_hit_rate_critical_percent} %"
    lookups = d_hits + d_misses
    window = f"{int(lookups)} lookups in {seconds:.1f} s"
    # A rate over a handful of lookups (or since start, say right after a smoke run) is noise.
    if lookups < MIN_LOOKUPS_FOR_HIT_RATE:
        shown = f"not enough traffic ({window}; judged from {MIN_LOOKUPS_FOR_HIT_RATE})"
        return Metric("keyspace hit rate", shown, threshold, OK)
    rate = _pct(d_hits, lookups)
    return Metric(
        "keyspace hit rate",
        f"{rate:.1f} % ({window})",
        threshold,
        _grade_low(rate, settings.alert_hit_rate_percent, settings.alert_hit_rate_critical_percent),
        rate,
    )


def _evictions(first: Sample, second: Sample, seconds: float, settings: Settings) -> Metric:
    evictions = (float(second["evicted_keys"]) - float(first["evicted_keys"])) / seconds
    return Metric(
        "evictions per second",
        f"{evictions:.1f}",
        f"> {settings.alert_evictions_per_second} / {settings.alert_evictions_critical_per_second}",
        _grade_high(evictions, settings.alert_evictions_per_second, settings.alert_evictions_critical_per_second),
        evictions,
    )


def _rejected(first: Sample, second: Sample, seconds: float) -> Metric:
    rejected = float(second["rejected_connections"]) - float(first["rejected_connections"])
    return Metric(
        "rejected connections",
        f"{rejected / seconds:.1f}/s ({int(second['rejected_connections'])} since start)",
        "> 0/s",
        WARN if rejected > 0 else OK,
        rejected / seconds,
    )


def _last_save(second: Sample, settings: Settings, now: float) -> Metric:
    bgsave_ok = second.get("rdb_last_bgsave_status", "ok") == "ok"
    age = now - float(second.get("rdb_last_save_time", now))
    unsaved = int(second.get("rdb_changes_since_last_save", 0)) > 0
    status = CRIT if not bgsave_ok else OK
    if bgsave_ok and bool(settings.save) and unsaved and age > settings.alert_last_save_age:
        status = WARN
    return Metric(
        "last RDB save",
        f"{'ok' if bgsave_ok else 'FAILED'}, {age:.0f} s ago",
        f"failed / older than {settings.alert_last_save_age} s",
        status,
        age,
    )


def _aof(second: Sample) -> Metric:
    aof_on = int(second.get("aof_enabled", 0)) == 1
    aof_ok = second.get("aof_last_write_status", "ok") == "ok" and second.get("aof_last_bgrewrite_status", "ok") == "ok"
    return Metric(
        "AOF",
        ("on, " if aof_on else "off, ") + ("ok" if aof_ok else "write FAILED"),
        "write or rewrite failed",
        CRIT if aof_on and not aof_ok else OK,
    )


def _role(second: Sample) -> Metric:
    role = second.get("role", "master")
    link = second.get("master_link_status")
    return Metric(
        "replication role",
        role + (f", link {link}" if link else "") + f", {int(second.get('connected_slaves', 0))} replica(s)",
        "replica link down",
        CRIT if role == "slave" and link != "up" else OK,
    )


def _replication(info: dict[str, Any], settings: Settings) -> list[Metric]:
    """The primary's replicas: how many are online, and how far behind the furthest is."""
    replicas = [v for k, v in info.items() if k.startswith("slave") and k[5:].isdigit() and isinstance(v, dict)]
    online = [r for r in replicas if r.get("state") == "online"]
    floor = settings.min_replicas_to_write or 0
    status = CRIT if len(online) < max(floor, 1) else WARN if len(online) < settings.replicas else OK
    lag = max((float(r.get("lag", 0)) for r in online), default=0.0)
    bound = settings.min_replicas_max_lag
    return [
        Metric(
            "replicas online",
            f"{len(online)} of {settings.replicas}",
            f"< {settings.replicas} / < {max(floor, 1)}" + (" (writes refused)" if floor else ""),
            status,
            float(len(online)),
        ),
        Metric(
            "replication lag",
            f"{lag:.0f} s (furthest replica)",
            f"> {bound / 2:g} s / > {bound} s (minReplicasMaxLag)",
            _grade_high(lag, bound / 2, bound),
            lag,
        ),
    ]


def _sentinel_view(first: dict[str, Any], second: dict[str, Any], settings: Settings) -> list[Metric]:
    """What a Sentinel says of the primary, and whether a failover happened in the window
    (each one raises the master's config epoch)."""
    flags = str(second.get("flags", ""))
    sentinels = int(second.get("num-other-sentinels", 0)) + 1
    down = "s_down" in flags or "o_down" in flags
    failovers = int(second.get("config-epoch", 0)) - int(first.get("config-epoch", 0))
    return [
        Metric(
            "Sentinel's view",
            f"primary {second.get('ip')}:{second.get('port')}, {flags}, {sentinels} of {settings.sentinels} Sentinels",
            f"primary down / fewer than {settings.sentinels} Sentinels",
            CRIT if down or sentinels < settings.sentinel_quorum else WARN if sentinels < settings.sentinels else OK,
            float(sentinels),
        ),
        Metric(
            "failovers",
            f"{failovers} in the window (config epoch {second.get('config-epoch', 0)})",
            "> 0",
            WARN if failovers > 0 else OK,
            float(failovers),
        ),
    ]


def sentinel_sample(client: redis.Redis, name: str) -> dict[str, Any]:
    """`SENTINEL MASTER <name>` as a mapping."""
    return handover.sentinel_fields(client.execute_command("SENTINEL", "MASTER", name))


def _oom_errors(info: dict[str, Any]) -> int:
    """Replies `-OOM ...` since start (INFO errorstats, Redis 6.2+)."""
    found = info.get("errorstat_OOM")
    return int(found["count"]) if isinstance(found, dict) else 0


def sample(client: redis.Redis) -> dict[str, Any]:
    return {**client.info(), **client.info("errorstats")}


def collect(
    client: redis.Redis, settings: Settings, interval: float = 1.0, sentinel: redis.Redis | None = None
) -> list[Metric]:
    """Two INFO samples `interval` apart, evaluated; and a Sentinel's view, if given."""
    name = topology.master_name(settings)
    first, start = sample(client), time.monotonic()
    watched = sentinel_sample(sentinel, name) if sentinel is not None else None
    time.sleep(interval)
    second, end = sample(client), time.monotonic()
    pair = (watched, sentinel_sample(sentinel, name)) if sentinel is not None and watched is not None else None
    return evaluate(first, second, end - start, settings, sentinel=pair)


def worst(metrics: list[Metric]) -> str:
    return max((m.status for m in metrics), key=SEVERITY.__getitem__, default=OK)


def exit_code(metrics: list[Metric]) -> int:
    return SEVERITY[worst(metrics)]


def table(metrics: list[Metric]) -> str:
    return tables.render(
        ["metric", "value", "threshold", "status"],
        [[m.name, m.value, m.threshold, m.status] for m in metrics],
        footer=f"overall: {worst(metrics)}",
    )


def as_json(metrics: list[Metric]) -> dict[str, Any]:
    return {"status": worst(metrics), "metrics": [asdict(m) for m in metrics]}
