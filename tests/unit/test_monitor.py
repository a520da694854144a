"""Monitor thresholds: pure evaluation of two INFO samples."""

from __future__ import annotations

import pytest

from bizosaas_redis.settings import Settings, build_settings, instances
from bizosaas_redis_ops.check import monitor

GB = 1024**3
BASE = {
    "used_memory": 0.1 * GB,
    "maxmemory": 2 * GB,
    "connected_clients": 10,
    "maxclients": 1000,
    "keyspace_hits": 900,
    "keyspace_misses": 100,
    "evicted_keys": 0,
    "rejected_connections": 0,
    "rdb_last_bgsave_status": "ok",
    "rdb_last_save_time": 1_000_000,
    "rdb_changes_since_last_save": 0,
    "aof_enabled": 1,
    "aof_last_write_status": "ok",
    "aof_last_bgrewrite_status": "ok",
    "role": "master",
    "connected_slaves": 0,
    "uptime_in_seconds": 5000,
}


def status_of(changes: dict, first_changes: dict | None = None, settings: Settings | None = None) -> dict[str, str]:
    first = {**BASE, **(first_changes or {})}
    second = {**BASE, **changes}
    metrics = monitor.evaluate(first, second, 1.0, settings or Settings(), now=1_000_100)
    return {m.name: m.status for m in metrics}


def test_a_quiet_server_is_all_ok():
    statuses = status_of({})
    assert set(statuses.values()) == {"OK"} and len(statuses) == 9


@pytest.mark.parametrize(
    ("changes", "first", "metric", "expected"),
    [
        ({"used_memory": 0.79 * 2 * GB}, None, "memory used", "OK"),
        ({"used_memory": 0.81 * 2 * GB}, None, "memory used", "WARN"),
        ({"used_memory": 0.96 * 2 * GB}, None, "memory used", "CRIT"),
        ({"maxmemory": 0}, None, "memory used", "WARN"),
        ({"connected_clients": 901}, None, "clients", "WARN"),
        ({"connected_clients": 990}, None, "clients", "CRIT"),
        ({"keyspace_hits": 970, "keyspace_misses": 130}, None, "keyspace hit rate", "WARN"),  # 70/100 in interval
        ({"keyspace_hits": 940, "keyspace_misses": 160}, None, "keyspace hit rate", "CRIT"),  # 40/100
        ({"keyspace_hits": 910, "keyspace_misses": 100}, None, "keyspace hit rate", "OK"),  # 10 lookups: too few
        # 45 % since start (a smoke run's misses) but no traffic now: not judged.
        (
            {"keyspace_hits": 450, "keyspace_misses": 550},
            {"keyspace_hits": 450, "keyspace_misses": 550},
            "keyspace hit rate",
            "OK",
        ),
        (
            {"keyspace_hits": 0, "keyspace_misses": 0},
            {"keyspace_hits": 0, "keyspace_misses": 0},
            "keyspace hit rate",
            "OK",
        ),
        ({"evicted_keys": 1001}, None, "evictions per second", "WARN"),
        ({"evicted_keys": 10_001}, None, "evictions per second", "CRIT"),
        ({"rejected_connections": 3}, None, "rejected connections", "WARN"),
        ({"rdb_last_bgsave_status": "err"}, None, "last RDB save", "CRIT"),
        ({"rdb_last_save_time": 1_000_100 - 4000, "rdb_changes_since_last_save": 5}, None, "last RDB save", "WARN"),
        ({"rdb_last_save_time": 1_000_100 - 4000}, None, "last RDB save", "OK"),  # nothing to save
        ({"aof_last_write_status": "err"}, None, "AOF", "CRIT"),
        ({"role": "slave", "master_link_status": "down"}, None, "replication role", "CRIT"),
        ({"role": "slave", "master_link_status": "up"}, None, "replication role", "OK"),
    ],
)
def test_each_threshold(changes, first, metric, expected):
    assert status_of(changes, first)[metric] == expected


def test_thresholds_come_from_the_settings():
    strict = Settings(alert_memory_percent=10, alert_memory_critical_percent=20)
    assert status_of({"used_memory": 0.15 * 2 * GB}, settings=strict)["memory used"] == "WARN"


def test_exit_code_is_the_worst_status():
    ok = monitor.Metric("a", "", "", "OK")
    warn = monitor.Metric("b", "", "", "WARN")
    crit = monitor.Metric("c", "", "", "CRIT")
    assert [monitor.exit_code(m) for m in ([ok], [ok, warn], [warn, crit, ok])] == [0, 1, 2]
    assert monitor.as_json([ok, warn])["status"] == "WARN"
    assert monitor.table([ok, crit]).splitlines()[-1] == "overall: CRIT"


def test_too_little_traffic_says_so():
    metrics = monitor.evaluate(
        {**BASE, "keyspace_hits": 450, "keyspace_misses": 550},
        {**BASE, "keyspace_hits": 452, "keyspace_misses": 557},
        2.0,
        Settings(),
        now=1_000_100,
    )
    rate = next(m for m in metrics if m.name == "keyspace hit rate")
    assert (rate.value, rate.status) == ("not enough traffic (9 lookups in 2.0 s; judged from 100)", "OK")


DURABLE = instances(build_settings({"layout": "split"}, "x"))[1]
FULL_ROW = "memory used (durable: refuses writes when full)"


@pytest.mark.parametrize(
    ("changes", "first", "metric", "expected"),
    [
        ({"used_memory": 0.79 * 2 * GB}, None, FULL_ROW, "OK"),
        # Where a cache is WARN, the durable instance is CRIT: full, it refuses writes.
        ({"used_memory": 0.81 * 2 * GB}, None, FULL_ROW, "CRIT"),
        ({"errorstat_OOM": {"count": 3}}, None, "writes refused (OOM)", "CRIT"),
        ({"errorstat_OOM": {"count": 3}}, {"errorstat_OOM": {"count": 3}}, "writes refused (OOM)", "OK"),
        ({}, None, "writes refused (OOM)", "OK"),
    ],
)
def test_the_durable_instance_has_its_own_memory_rows(changes, first, metric, expected):
    statuses = status_of(changes, first, settings=DURABLE)
    assert statuses[metric] == expected
    assert "memory used" not in statuses, "the cache's row is not shown for the durable instance"


SENTINEL_SETTINGS = build_settings(
    {"topology": "sentinel", "minReplicasToWrite": 1, "minReplicasMaxLag": 10}, "staging"
)


def _replica(state: str = "online", lag: int = 0) -> dict:
    return {"ip": "10.0.0.12", "port": 6381, "state": state, "offset": 100, "lag": lag}


def _sentinel(epoch: int = 0, flags: str = "master", others: int = 2) -> dict:
    return {"ip": "10.0.0.11", "port": 6380, "flags": flags, "num-other-sentinels": others, "config-epoch": epoch}


def _topology_status(info: dict, first_view: dict | None = None, view: dict | None = None) -> dict[str, str]:
    pair = (first_view or _sentinel(), view or _sentinel())
    metrics = monitor.evaluate(BASE, {**BASE, **info}, 1.0, SENTINEL_SETTINGS, now=1_000_100, sentinel=pair)
    return {m.name: m.status for m in metrics}


@pytest.mark.parametrize(
    ("info", "metric", "expected"),
    [
        ({"slave0": _replica(), "slave1": _replica()}, "replicas online", "OK"),
        ({"slave0": _replica(), "slave1": _replica("wait_bgsave")}, "replicas online", "WARN"),
        ({}, "replicas online", "CRIT"),  # minReplicasToWrite 1: every write is refused
        ({"slave0": _replica(lag=4), "slave1": _replica()}, "replication lag", "OK"),
        ({"slave0": _replica(lag=6), "slave1": _replica()}, "replication lag", "WARN"),
        ({"slave0": _replica(lag=11), "slave1": _replica()}, "replication lag", "CRIT"),
    ],
)
def test_replication_rows_of_the_sentinel_topology(info, metric, expected):
    assert _topology_status(info)[metric] == expected


@pytest.mark.parametrize(
    ("first", "second", "metric", "expected"),
    [
        (_sentinel(), _sentinel(), "Sentinel's view", "OK"),
        (_sentinel(), _sentinel(others=1), "Sentinel's view", "WARN"),
        (_sentinel(), _sentinel(others=0), "Sentinel's view", "CRIT"),
        (_sentinel(), _sentinel(flags="master,s_down"), "Sentinel's view", "CRIT"),
        (_sentinel(epoch=3), _sentinel(epoch=3), "failovers", "OK"),
        (_sentinel(epoch=3), _sentinel(epoch=4), "failovers", "WARN"),
    ],
)
def test_sentinels_view_and_failovers(first, second, metric, expected):
    replicas = {"slave0": _replica(), "slave1": _replica()}
    assert _topology_status(replicas, first, second)[metric] == expected


def test_standalone_has_no_replication_rows():
    assert "replicas online" not in status_of({})
