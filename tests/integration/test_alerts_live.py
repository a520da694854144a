"""Every alerting rule, fired and resolved on a live deployment by a real Prometheus.

The production stack file (split: a cache and a durable instance, an exporter beside each)
deployed with `bizosaas-redis up` under the tests' names, small (cache 32 MB, durable
16 MB, maxclients 100, alertLastSaveAge 15 s); Debian's Prometheus on loopback scrapes both
exporters every second and evaluates the rules `bizosaas-redis alert-rules` generates for
that stack, each rule's `for` set to 0 s: the wait before firing is Prometheus's own, what
is tested is each expression against the live exporter's metrics. Each case drives the
deployment into a rule's condition, waits until the alert fires, removes the cause and
waits until it resolves. Rules over a 5-minute window resolve 5 minutes after their cause:
those cases run first and the last test waits for them. The README's live alert table
comes from TABLE (`pytest -rP` shows it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import redis
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry

from bizosaas_redis.connection import with_db
from bizosaas_redis.settings import Settings, instances
from bizosaas_redis_ops import results, tables
from bizosaas_redis_ops.check import alerts
from bizosaas_redis_ops.deploy.docker_engine import wait_healthy
from bizosaas_redis_ops.deploy.sandbox import settings_of
from conftest import ROOT, TEST_EXTERNAL_NETWORK, TEST_PREFIX, cli, unavailable
from harness import Deployment, write_results
from prometheus_server import Prometheus

STACK = "production"
OWN = f"{TEST_PREFIX}-alerts"
NAMES = {"containerName": OWN, "volumeName": f"{OWN}-data", "networkName": TEST_EXTERNAL_NETWORK}
DURABLE = {"maxmemory": "16mb", "memoryLimit": "128mb", "appendonly": True, "appendfsync": "everysec"}
SETTINGS = (
    "maxmemory=32mb",
    "memoryLimit=128mb",
    f"durable={json.dumps(DURABLE)}",
    "maxclients=100",
    "alertLastSaveAge=15",
)
CACHE_JOB = "bizosaas-redis-production"
DURABLE_JOB = f"{CACHE_JOB}-durable"
# Bounds: an alert fires within FIRE_WITHIN s of its condition (scrape + evaluation every
# second); a rule over an N-minute window resolves within N minutes + RESOLVE_MARGIN s.
FIRE_WITHIN = 20.0
RESOLVE_MARGIN = 30.0
VALUE = b"x" * 1000


@dataclass
class Row:
    alert: str
    job: str
    cause: str
    fired_after: float
    fire_within: float  # the bound the test asserted
    resolved_after: float | None = None
    resolve_within: float | None = None


TABLE: list[Row] = []
# (alert, job) -> when its cause was removed, for the rules that resolve after their window.
LATE: dict[tuple[str, str], float] = {}


@dataclass
class Live:
    deployment: Deployment
    settings: Settings
    prometheus: Prometheus
    rules: list[dict]

    def admin(self, durable: bool = False) -> redis.Redis:
        key = "durable_redis_admin_url" if durable else "redis_admin_url"
        url = with_db(self.deployment.outputs()[key], 0)
        return redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_timeout=10)

    def container(self, durable: bool = False) -> str:
        return f"{OWN}-durable" if durable else OWN


@pytest.fixture(scope="module")
def live(engine, offline_image, tmp_path_factory) -> Iterator[Live]:
    if shutil.which("prometheus") is None:
        unavailable("prometheus is not installed (apt-get install prometheus)")
    deployment = Deployment(STACK, NAMES, offline_image, SETTINGS)
    folder = tmp_path_factory.mktemp("prometheus")
    prometheus = None
    try:
        deployment.up()
        settings = settings_of(STACK, deployment.sandbox.overrides)
        generated = cli("alert-rules", "--stack", STACK, env={**os.environ, **deployment.sandbox.env()}).stdout
        document = yaml.safe_load(generated)
        rules = [rule for group in document["groups"] for rule in group["rules"]]
        for rule in rules:
            rule["for"] = "0s"
        (folder / "rules.yml").write_text(yaml.safe_dump(document, sort_keys=False))
        prometheus = Prometheus(folder, alerts.scrape_configs(settings), folder / "rules.yml")
        _until(lambda: prometheus.targets_up() == {CACHE_JOB: "up", DURABLE_JOB: "up"}, 60, "both exporters scraped")
        _until(lambda: len(prometheus.query("redis_up == 1")) == 2, 60, "redis_up 1 on both exporters")
        yield Live(deployment, settings, prometheus, rules)
    finally:
        if prometheus is not None:
            prometheus.stop()
        deployment.close(engine)


def _until(condition: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.25)
    raise AssertionError(f"not within {timeout} s: {what}")


def fired(live: Live, wanted: set[tuple[str, str]], cause: str, since: float, timeout: float = FIRE_WITHIN) -> None:
    """Until every (alert, job) in `wanted` fires; rows in TABLE."""
    _until(lambda: wanted <= live.prometheus.firing(), timeout, f"{sorted(wanted)} firing ({cause})")
    after = time.monotonic() - since
    for alert, job in sorted(wanted):
        TABLE.append(Row(alert, job, cause, after, timeout))


def resolved(live: Live, wanted: set[tuple[str, str]], since: float, window: float = 0.0) -> None:
    """Until none of `wanted` fires, within the rule's window + RESOLVE_MARGIN s of `since`."""
    timeout = window + RESOLVE_MARGIN - (time.monotonic() - since)
    _until(lambda: not (wanted & live.prometheus.firing()), timeout, f"{sorted(wanted)} resolved")
    for row in TABLE:
        if (row.alert, row.job) in wanted and row.resolved_after is None:
            row.resolved_after = time.monotonic() - since
            row.resolve_within = window + RESOLVE_MARGIN


def _fill(client: redis.Redis, prefix: str, until: Callable[[], bool], batch: int = 200) -> int:
    """SET <prefix><n> 1 kB values until `until()`; how many were written."""
    n = 0
    while not until():
        pipe = client.pipeline(transaction=False)
        for i in range(n, n + batch):
            pipe.set(f"{prefix}{i}", VALUE)
        pipe.execute()
        n += batch
    return n


def _used(client: redis.Redis) -> float:
    memory = client.info("memory")
    return 100 * memory["used_memory"] / memory["maxmemory"]


def _drop(client: redis.Redis, pattern: str) -> None:
    for keys in _batches(client.scan_iter(match=pattern, count=1000), 1000):
        client.unlink(*keys)


def _batches(items: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- the rules over a 5-minute window first: they resolve 5 minutes after their cause ------


def test_clients_high_critical_and_rejected(live):
    """Connections up to 95 % of maxclients, then 99 %, then one refused; on both instances."""
    opened: list[redis.Redis] = []
    both = (live.admin(), live.admin(durable=True))
    try:

        def open_until(percent: int) -> None:
            for index, admin in enumerate(both):
                while admin.info("clients")["connected_clients"] < percent:
                    extra = live.admin(durable=index == 1)
                    extra.ping()
                    opened.append(extra)

        started = time.monotonic()
        open_until(95)
        fired(live, {("RedisClientsHigh", CACHE_JOB), ("RedisClientsHigh", DURABLE_JOB)}, "95 clients of 100", started)
        started = time.monotonic()
        open_until(99)  # the exporter's own connection makes 100 while it scrapes
        fired(
            live,
            {("RedisClientsCritical", CACHE_JOB), ("RedisClientsCritical", DURABLE_JOB)},
            "99 clients of 100",
            started,
        )
        started = time.monotonic()
        for durable in (False, True):
            refused = 0
            for _ in range(5):
                try:
                    extra = live.admin(durable=durable)
                    extra.ping()
                    opened.append(extra)
                except redis.ConnectionError as exc:
                    assert "max number of clients reached" in str(exc)
                    refused += 1
            assert refused, "maxclients refused no connection"
        # Room again, so that the exporter (refused too while Redis is full) can scrape.
        for extra in opened[-10:]:
            extra.close()
        fired(
            live,
            {("RedisRejectedConnections", CACHE_JOB), ("RedisRejectedConnections", DURABLE_JOB)},
            "a connection refused (maxclients)",
            started,
        )
    finally:
        for extra in opened:
            extra.close()
    removed = time.monotonic()
    resolved(live, {("RedisClientsHigh", CACHE_JOB), ("RedisClientsHigh", DURABLE_JOB)}, removed)
    resolved(live, {("RedisClientsCritical", CACHE_JOB), ("RedisClientsCritical", DURABLE_JOB)}, removed)
    LATE[("RedisRejectedConnections", CACHE_JOB)] = LATE[("RedisRejectedConnections", DURABLE_JOB)] = removed


def test_durable_memory_high_then_writes_refused(live):
    """The durable instance (noeviction) filled past 80 %, then until it refuses a write."""
    admin = live.admin(durable=True)
    started = time.monotonic()
    _fill(admin, "fill:", lambda: _used(admin) > 85)
    fired(live, {("RedisDurableMemoryHigh", DURABLE_JOB)}, "durable memory 85 % of maxmemory", started)
    started = time.monotonic()
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        _fill(admin, "more:", lambda: False)
    fired(live, {("RedisDurableWritesRefused", DURABLE_JOB)}, "a write refused (OOM)", started)
    _drop(admin, "fill:*")
    _drop(admin, "more:*")
    removed = time.monotonic()
    resolved(live, {("RedisDurableMemoryHigh", DURABLE_JOB)}, removed)
    LATE[("RedisDurableWritesRefused", DURABLE_JOB)] = removed


# --- the others, each resolved as soon as its cause is gone --------------------------------


def test_redis_down(live, engine):
    started = time.monotonic()
    for durable in (False, True):
        engine.containers.get(live.container(durable)).stop(timeout=30)
    fired(live, {("RedisDown", CACHE_JOB), ("RedisDown", DURABLE_JOB)}, "both Redis containers stopped", started)
    for durable in (False, True):
        engine.containers.get(live.container(durable)).start()
    removed = time.monotonic()
    for durable in (False, True):
        wait_healthy(engine, live.container(durable), 60)
    resolved(live, {("RedisDown", CACHE_JOB), ("RedisDown", DURABLE_JOB)}, removed)


def test_cache_memory_high_then_critical(live):
    admin = live.admin()
    started = time.monotonic()
    _fill(admin, "mem:", lambda: _used(admin) > 85)
    fired(live, {("RedisMemoryHigh", CACHE_JOB)}, "cache memory 85 % of maxmemory", started)
    started = time.monotonic()
    _fill(admin, "full:", lambda: admin.info("stats")["evicted_keys"] > 0)
    fired(live, {("RedisMemoryCritical", CACHE_JOB)}, "cache memory full (evicting)", started)
    _drop(admin, "mem:*")
    _drop(admin, "full:*")
    removed = time.monotonic()
    resolved(live, {("RedisMemoryHigh", CACHE_JOB), ("RedisMemoryCritical", CACHE_JOB)}, removed)


def test_hit_rate_critical_then_low(live):
    """Lookups in the 5-minute window: all misses, then 2 hits a miss, then mostly hits."""
    admin = live.admin()

    def lookups(key: str, count: int) -> None:
        for _ in range(count // 500):
            pipe = admin.pipeline(transaction=False)
            for _ in range(500):
                pipe.get(key)
            pipe.execute()

    admin.set("hit", "1")
    started = time.monotonic()
    lookups("missing", 1000)
    fired(live, {("RedisHitRateCritical", CACHE_JOB)}, "1 000 misses, no hit", started)
    started = time.monotonic()
    lookups("hit", 2000)
    fired(live, {("RedisHitRateLow", CACHE_JOB)}, "then 2 000 hits (67 %)", started)
    assert ("RedisHitRateCritical", CACHE_JOB) not in live.prometheus.firing()
    lookups("hit", 30_000)
    removed = time.monotonic()
    resolved(live, {("RedisHitRateLow", CACHE_JOB), ("RedisHitRateCritical", CACHE_JOB)}, removed)


def test_evictions_high_then_critical(live):
    """Writes into a full cache: about 5 000 evictions a second, then as fast as it goes."""
    admin = live.admin()
    _fill(admin, "pre:", lambda: admin.info("stats")["evicted_keys"] > 0)
    started = time.monotonic()
    n = 0

    def write(batch: int) -> None:
        nonlocal n
        pipe = admin.pipeline(transaction=False)
        for i in range(n, n + batch):
            pipe.set(f"ev:{i}", VALUE)
        pipe.execute()
        n += batch

    high = {("RedisEvictionsHigh", CACHE_JOB)}
    while not high <= live.prometheus.firing():
        assert time.monotonic() - started < 90, "RedisEvictionsHigh did not fire at 5 000 evictions/s"
        write(500)
        time.sleep(0.1)
    TABLE.append(Row("RedisEvictionsHigh", CACHE_JOB, "about 5 000 evictions/s", time.monotonic() - started, 90))
    started = time.monotonic()
    critical = {("RedisEvictionsCritical", CACHE_JOB)}
    while not critical <= live.prometheus.firing():
        assert time.monotonic() - started < 120, "RedisEvictionsCritical did not fire at full speed"
        for _ in range(10):
            write(1000)
    TABLE.append(Row("RedisEvictionsCritical", CACHE_JOB, "as fast as it goes", time.monotonic() - started, 120))
    removed = time.monotonic()
    resolved(live, high | critical, removed, window=60)
    _drop(admin, "*")


def _data_folder(engine: docker.DockerClient, container: str) -> Path:
    mount = next(m for m in engine.api.inspect_container(container)["Mounts"] if m["Destination"] == "/data")
    return Path(mount["Source"])


def test_persistence_failed(live, engine):
    """A snapshot that cannot be written (the data folder made read-only to Redis's user)."""
    folders = [_data_folder(engine, live.container(durable)) for durable in (False, True)]
    modes = [folder.stat().st_mode & 0o7777 for folder in folders]
    admins = (live.admin(), live.admin(durable=True))
    started = time.monotonic()
    try:
        for folder in folders:
            folder.chmod(0o555)
        for admin in admins:
            admin.bgsave()
        fired(
            live,
            {("RedisPersistenceFailed", CACHE_JOB), ("RedisPersistenceFailed", DURABLE_JOB)},
            "BGSAVE into a read-only folder",
            started,
        )
    finally:
        for folder, mode in zip(folders, modes, strict=True):
            folder.chmod(mode)
    for admin in admins:
        _until(lambda admin=admin: _saved(admin), 30, "BGSAVE succeeds again")
    removed = time.monotonic()
    resolved(live, {("RedisPersistenceFailed", CACHE_JOB), ("RedisPersistenceFailed", DURABLE_JOB)}, removed)


def _saved(admin: redis.Redis) -> bool:
    """Ask for a snapshot; true once the last one succeeded."""
    with contextlib.suppress(redis.ResponseError):  # one already running
        admin.bgsave()
    time.sleep(0.5)
    persistence = admin.info("persistence")
    return persistence["rdb_bgsave_in_progress"] == 0 and persistence["rdb_last_bgsave_status"] == "ok"


def test_last_save_too_old(live):
    """A change not saved for longer than alertLastSaveAge (15 s here)."""
    admins = (live.admin(), live.admin(durable=True))
    for admin in admins:
        _until(lambda admin=admin: _saved(admin), 30, "a fresh snapshot")
    started = time.monotonic()
    for admin in admins:
        admin.set("unsaved", "1")
    wanted = {("RedisLastSaveTooOld", CACHE_JOB), ("RedisLastSaveTooOld", DURABLE_JOB)}
    fired(live, wanted, "a change unsaved for 15 s", started, timeout=15 + FIRE_WITHIN)
    for admin in admins:
        _until(lambda admin=admin: _saved(admin), 30, "a snapshot")
    resolved(live, wanted, time.monotonic())


# --- what the rules and the dashboard read exists; the late ones resolve ---------------------


def _metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bredis_[a-z0-9_]+", expr))


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((ROOT / "monitoring" / f"{STACK}.dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_every_panel_of_the_dashboard_returns_data(live):
    jobs = f"{CACHE_JOB}|{DURABLE_JOB}"
    empty = [expr for expr in _dashboard_exprs() if not live.prometheus.query(expr.replace("$job", jobs))]
    assert not empty, f"panels with no data: {empty}"


def test_every_metric_the_rules_and_dashboard_read_is_exported(live):
    names = set().union(*(_metric_names(rule["expr"]) for rule in live.rules), *map(_metric_names, _dashboard_exprs()))
    exported: set[str] = set()
    for instance in instances(live.settings):
        with urllib.request.urlopen(f"http://127.0.0.1:{instance.exporter_port}/metrics", timeout=10) as response:
            body = response.read().decode()
        exported |= {line.split("{")[0].split(" ")[0] for line in body.splitlines() if line.startswith("redis_")}
    assert names and not names - exported, f"not exported: {sorted(names - exported)}"


def test_every_rule_fired_and_resolved(live):
    """The rules over a 5-minute window resolve too; then every rule of the file is in TABLE."""
    for (alert, job), removed in sorted(LATE.items(), key=lambda item: item[1]):
        resolved(live, {(alert, job)}, removed, window=300)
    declared = {(rule["alert"], rule["expr"].split('job="')[1].split('"')[0]) for rule in live.rules}
    seen = {(row.alert, row.job) for row in TABLE if row.resolved_after is not None}
    assert declared - seen == set(), f"rules never fired and resolved: {sorted(declared - seen)}"
    print(
        tables.render(
            ["alert", "job", "cause", "fired after", "resolved after"],
            [[r.alert, r.job, r.cause, f"{r.fired_after:.1f} s", f"{r.resolved_after:.1f} s"] for r in TABLE],
        )
    )
    figures = []
    for row in TABLE:
        what = f"{row.alert} ({'durable' if row.job == DURABLE_JOB else 'cache'}, {row.cause})"
        mechanism = "the time the test gives Prometheus, its rule's window included"
        figures.append(
            results.figure(f"{what}: fired after", [row.fired_after], bound=row.fire_within, bound_from=mechanism)
        )
        assert row.resolved_after is not None and row.resolve_within is not None
        figures.append(
            results.figure(
                f"{what}: resolved after", [row.resolved_after], bound=row.resolve_within, bound_from=mechanism
            )
        )
    conditions = "the production stack file, small (cache 32 MB, durable 16 MB, maxclients 100), Prometheus every 1 s"
    write_results("alerts-live", conditions, figures)
