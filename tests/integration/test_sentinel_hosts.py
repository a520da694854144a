"""High availability, measured: the sentinel topology deployed across three Docker hosts.

Each host is a network namespace with its own dockerd (tests/hosts.py). The staging stack
runs under the tests' names with topology sentinel: node 0 (the first primary), two
replicas and three Sentinels, one of each per host, deployed by `bizosaas-redis up` (the
real engine, a docker provider per host) through each host's Docker endpoint. Writers
count acknowledged writes through Sentinel, as services do
(bizosaas_redis_patterns.connect); each fault reports the longest time without a
successful write and the acknowledged writes missing afterwards. The table is printed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from redis.backoff import NoBackoff
from redis.retry import Retry

import harness
from bizosaas_redis import handover, topology
from bizosaas_redis.connection import BROKER_HEALTH_CHECK
from bizosaas_redis_ops import results, tables
from bizosaas_redis_ops.check import alerts, smoke_celery
from bizosaas_redis_ops.deploy.sandbox import Sandbox
from bizosaas_redis_patterns import EventStream, KeySpace, connect
from conftest import STAND_INS, TEST_PREFIX, cli, unavailable
from harness import CountingWriter, Knocker, write_results
from hosts import DockerHost, docker_hosts
from prometheus_server import Prometheus

STACK = "staging"
# Keys written before the backup (restored) and after it (gone after the restore).
KEYS_AROUND_BACKUP = 200
NAME = f"{TEST_PREFIX}-ha"
DOWN_AFTER_MS = 1000
MAX_LAG = 2
FAILOVER_TIMEOUT_MS = 10_000
RESULTS: dict[str, dict[str, str]] = {}
# The longest a write through Sentinel may wait while online settings change (CONFIG SET
# takes microseconds; room for a loaded CI machine), as in test_online_settings.
ONLINE_PAUSE_BOUND = 0.5
# The same runs as results/ha-faults.json figures (harness.write_results), bounds beside them.
FIGURES: list[dict[str, object]] = []


# Why a bound is what it is when not the measurements (results.bound_for of the worst run).
FROM_ELECTION = "Sentinel's election (ELECTION), then clients asking a Sentinel again"
FROM_REPLICATION = "asynchronous replication: the last write acknowledged before the fault"


def _figure(fault: str, what: str, values: list[float], bound: float, bound_from: str, unit: str = "s") -> None:
    """One figure of results/ha-faults.json; `bound_from`: "measured" or why the bound is what it is."""
    if values:
        FIGURES.append(
            results.figure(
                f"{fault}: {what}", values, unit, fault=fault, figure=what, bound=bound, bound_from=bound_from
            )
        )


@dataclass(frozen=True)
class Bound:
    """What a fault may cost at most, asserted by its test (README, "High availability")."""

    lost: int  # acknowledged writes lost
    pause: float  # longest time without a successful write (s)
    new_primary: float | None = None  # time to a new primary (s), where one is elected
    pause_from: str = "measured"  # or why the pause bound is what it is


# Sentinel elects a leader about a second after downAfterMilliseconds; when two Sentinels
# split the vote, each tries again only twice failoverTimeout after its first attempt
# (Redis's sentinel.conf); clients then ask a Sentinel again (1 s timeouts on a silent host's).
ELECTION = (DOWN_AFTER_MS + 2 * FAILOVER_TIMEOUT_MS) / 1000 + 3
# A "measured" pause bound is the worst run in results/ha-faults.json by results.bound_for
# (tests/unit/test_bounds.py holds it there); the others follow from Sentinel's election.
BOUNDS = {
    # AOF everysec: a killed process's writes are in the kernel's page cache; restarted
    # before downAfterMilliseconds, it stays the primary.
    "primary's Redis killed, Docker restarts it": Bound(lost=0, pause=12.7),
    # Replication is asynchronous: a sequential writer's last write may be acknowledged
    # before a replica has it; it is the only one at risk.
    "primary's Redis killed, stays down": Bound(
        lost=1, pause=ELECTION + 5, new_primary=ELECTION, pause_from=FROM_ELECTION
    ),
    "primary's host stopped (link down, every container killed)": Bound(
        lost=1, pause=ELECTION + 15, new_primary=ELECTION + 5, pause_from=FROM_ELECTION
    ),
    # Writes wait during the handover (CLIENT PAUSE WRITE), none refused or lost; then the
    # first Sentinel clients ask names the new primary (the failover's leader is the last).
    "planned change replacing every node (pulumi up)": Bound(lost=0, pause=2.4),
}
# The partition (its own test): 0 durable writes lost, a new primary within ELECTION, and
# plain writes lost at most those acknowledged after the cut (plus the one before it, maybe
# still on its way to the replicas). A replica acknowledges its offset every second, and the
# primary recounts the replicas within minReplicasMaxLag once a second: a cut-off primary
# takes writes for at most MAX_LAG + ACK_INTERVAL + RECOUNT seconds after the cut.
ACK_INTERVAL = 1.0
RECOUNT = 1.0
TIMING_SLACK = 1.0
PARTITION_WRITES_TAKEN = MAX_LAG + ACK_INTERVAL + RECOUNT + TIMING_SLACK


def _overrides(hosts: list[DockerHost], image: str, **more: Any) -> dict[str, Any]:
    names = [f"h{h.index}" for h in hosts]
    return {
        "containerName": NAME,
        "volumeName": NAME,
        "image": image,
        "topology": "sentinel",
        "dockerHosts": {f"h{h.index}": {"url": h.socket, "address": h.address} for h in hosts},
        "placement": names,
        "sentinelPlacement": names,
        "hostPort": 6390,
        "sentinelPort": 26390,
        "exporterImage": STAND_INS["exporterImage"],
        "exporterPort": 9390,
        "downAfterMilliseconds": DOWN_AFTER_MS,
        "failoverTimeout": FAILOVER_TIMEOUT_MS,
        "minReplicasToWrite": 1,
        "minReplicasMaxLag": MAX_LAG,
        "maxmemory": "64mb",
        "healthcheckInterval": 1,
        "healthcheckTimeout": 1,
        "healthcheckStartPeriod": 0,
        **more,
    }


@dataclass
class Stack:
    hosts: list[DockerHost]
    image: str
    sandbox: Sandbox

    @property
    def settings(self):  # type: ignore[no-untyped-def]
        return self.sandbox.settings()

    def outputs(self) -> dict[str, Any]:
        return self.sandbox.outputs()

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return cli(*args, env={**os.environ, **self.sandbox.env()}, check=False)

    def app_url(self) -> tuple[str, str]:
        """The services' REDIS_URL (sentinel://, with the password) and the master name."""
        out = self.outputs()
        return out["consumer_secrets"]["REDIS_URL"], out["master_name"]

    def app(self, where: tuple[str, str] | None = None) -> redis.Redis:
        url, master = where or self.app_url()
        return connect(url, master, socket_timeout=1, socket_connect_timeout=1, retry=Retry(NoBackoff(), 0))

    def node_admin(self, endpoint: str) -> redis.Redis:
        out = self.outputs()
        head, _, _ = out["redis_admin_url"].rpartition("@")
        return redis.Redis.from_url(f"{head}@{endpoint}/0", socket_timeout=2, decode_responses=True)

    def primary(self) -> str | None:
        """The primary the first reachable Sentinel reports (a cut-off host's is not)."""
        for sentinel in topology.sentinels(self.settings):
            watcher = redis.Redis(
                host=sentinel.host.address,
                port=sentinel.port,
                username="healthcheck",
                password="healthcheck",
                socket_timeout=0.5,
                socket_connect_timeout=0.5,
                retry=Retry(NoBackoff(), 0),  # redis-py's 10 retries took 6 s on a cut-off host
                decode_responses=True,
            )
            try:
                found = watcher.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", NAME)
                return f"{found[0]}:{found[1]}" if found else None
            except redis.RedisError:
                continue
            finally:
                watcher.close()
        return None

    def host_of(self, endpoint: str) -> DockerHost:
        return next(h for h in self.hosts if endpoint.startswith(h.address + ":"))

    def container_at(self, endpoint: str) -> str:
        return next(n.container_name for n in topology.nodes(self.settings) if n.endpoint == endpoint)


@pytest.fixture(scope="module")
def stack(offline_image, docker_client) -> Iterator[Stack]:
    with docker_hosts(3) as hosts:
        for host in hosts:
            host.load_image(docker_client, offline_image)
            host.load_image(docker_client, STAND_INS["exporterImage"])
        deployed = Stack(hosts, offline_image, Sandbox(STACK, _overrides(hosts, offline_image)))
        try:
            deployed.sandbox.up()
            yield deployed
        finally:
            # The hosts go with their dockerd and everything on them; the state with the folder.
            deployed.sandbox.project.remove()
    if RESULTS:
        print(
            "\n"
            + tables.render(["fault", *next(iter(RESULTS.values()))], [[k, *v.values()] for k, v in RESULTS.items()])
        )
    write_results("ha-faults", f"{STACK} stack file, topology sentinel, 3 Docker hosts in network namespaces", FIGURES)


class Writer(CountingWriter):
    """Writes through Sentinel, as services do (the URL resolved once, in the test's thread:
    the program runs there only)."""

    def __init__(self, stack: Stack, prefix: str) -> None:
        super().__init__(prefix)
        self.stack = stack
        self._where = stack.app_url()

    def __repr__(self) -> str:  # the URL holds a password
        return f"Writer(prefix={self.prefix!r}, acked={len(self.acked)})"

    def connect(self) -> redis.Redis:
        return self.stack.app(self._where)

    def lost(self, replicas: int = 2) -> int:
        """Acknowledged writes missing on the primary, once `replicas` replicas follow it
        (read from the primary itself: a client pointed at a replica mid-resync would miscount)."""
        return missing_on_primary(self.stack, [f"{self.prefix}{n}" for n in self.acked], replicas)


def missing_on_primary(stack: Stack, keys: list[str], replicas: int = 2) -> int:
    _settled(stack, replicas)
    primary = stack.primary()
    assert primary is not None
    client = stack.node_admin(primary)
    assert client.info("replication")["role"] == "master"
    present = sum(int(client.exists(*keys[i : i + 1000])) for i in range(0, len(keys), 1000))
    return len(keys) - present


def _wait(condition, timeout: float = 60, what: str = "") -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _settled(stack: Stack, replicas: int = 2) -> None:
    """A primary Sentinel agrees on, with every replica connected to it."""

    def ok() -> bool:
        primary = stack.primary()
        if primary is None:
            return False
        try:
            info = stack.node_admin(primary).info("replication")
        except redis.RedisError:
            return False
        up = [
            k for k, v in info.items() if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"
        ]
        return info.get("role") == "master" and len(up) == replicas

    _wait(ok, 90, "the primary with every replica online")


def test_deploys_across_hosts_with_node_0_primary(stack: Stack) -> None:
    _settled(stack)
    nodes = topology.nodes(stack.settings)
    assert stack.primary() == nodes[0].endpoint
    for node in nodes:
        client = stack.hosts[node.index].client
        assert client is not None
        attrs = client.api.inspect_container(node.container_name)
        assert attrs["HostConfig"]["NetworkMode"] == "host"
        assert attrs["HostConfig"]["ReadonlyRootfs"] is True
        assert attrs["Config"]["User"] == "999:1000"
    sentinel = stack.node_admin(nodes[0].endpoint)
    assert sentinel.info("replication")["connected_slaves"] == 2
    password = stack.outputs()["redis_password"]
    for host in stack.hosts:
        assert host.client is not None
        for container in host.client.containers.list():
            assert password not in str(host.client.api.inspect_container(container.id))
            assert password not in container.exec_run(["ps", "-ef"], user="999").output.decode(errors="replace")


def _metrics(url: str) -> dict[str, float]:
    """An exporter's samples: `name{labels}` -> value."""
    with urllib.request.urlopen(url, timeout=10) as response:
        lines = response.read().decode().splitlines()
    return {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("redis_")}


def test_each_node_has_an_exporter_on_its_host(stack: Stack) -> None:
    """One exporter per node, on the node's host at exporterPort + N: the primary's reports
    two replicas, each replica's its link to the primary up."""
    _settled(stack)
    urls = stack.outputs()["exporter_urls"]
    nodes = topology.nodes(stack.settings)
    assert urls == [f"http://{n.host.address}:{9390 + n.index}/metrics" for n in nodes]
    for node, url in zip(nodes, urls, strict=True):
        client = stack.hosts[node.index].client
        assert client is not None
        attrs = client.api.inspect_container(f"{node.container_name}-exporter")
        assert attrs["HostConfig"]["ReadonlyRootfs"] is True and attrs["Config"]["User"] == "59000:59000"
        samples = _metrics(url)
        assert samples["redis_up"] == 1
        role = "master" if node.endpoint == stack.primary() else "slave"
        assert any(k.startswith("redis_instance_info{") and f'role="{role}"' in k for k in samples), role
        if role == "master":
            assert samples["redis_connected_slaves"] == 2
            # What the replication rules read (RedisReplicationLagHigh).
            lags = [v for k, v in samples.items() if k.startswith("redis_connected_slave_lag_seconds{")]
            assert len(lags) == 2 and max(lags) <= 1, lags
        else:
            [link] = [v for k, v in samples.items() if k.split("{")[0] == "redis_master_link_up"]
            assert link == 1


def _sentinel_samples(url: str) -> dict[str, float]:
    """A Sentinel exporter's per-master metrics by name (one master: the instance)."""
    return {k.split("{")[0]: v for k, v in _metrics(url).items() if k.startswith("redis_sentinel_master_")}


def test_each_sentinel_has_an_exporter_reporting_its_quorum(stack: Stack) -> None:
    """One exporter per Sentinel on its host at exporterPort + replicas + j, read as the
    exporter user: each Sentinel sees the three Sentinels, two replicas and its quorum (the
    metrics RedisSentinelQuorumLost reads; a refused CKQUORUM would read 0)."""
    _settled(stack)
    sentinels = topology.sentinels(stack.settings)
    urls = stack.outputs()["sentinel_exporter_urls"]
    assert urls == [f"http://{s.host.address}:{9392 + s.index}/metrics" for s in sentinels]
    for sentinel, url in zip(sentinels, urls, strict=True):
        host = stack.host_of(sentinel.endpoint)
        assert host.client is not None
        attrs = host.client.api.inspect_container(f"{sentinel.container_name}-exporter")
        assert attrs["HostConfig"]["ReadonlyRootfs"] is True and attrs["Config"]["User"] == "59000:59000"
        assert _metrics(url)["redis_up"] == 1
        seen = _sentinel_samples(url)
        assert seen["redis_sentinel_master_ckquorum_status"] == 1, seen
        assert (seen["redis_sentinel_master_ok_sentinels"], seen["redis_sentinel_master_ok_slaves"]) == (3, 2), seen
        # Nothing the exporter asks is refused by its ACL (a refusal would be logged here).
        refused = [e for e in stack.node_admin(sentinel.endpoint).acl_log() if e.get("username") == "exporter"]
        assert not refused, refused


# Bound: the quorum alert fires within downAfterMilliseconds (the others' Sentinels seen
# down) + Prometheus's scrape and evaluation (1 s each) + this slack.
QUORUM_ALERT_SLACK = 10.0
# They resolve once the Sentinels are back and scraped again: well inside this.
QUORUM_RESOLVE_WITHIN = 60.0


def test_losing_two_sentinels_fires_the_quorum_alert(stack: Stack, tmp_path: Path) -> None:
    """Two of the three Sentinels stopped under a real Prometheus that scrapes the stack's
    exporters (alerts.scrape_configs) and evaluates its generated rules (`for` 0 s):
    RedisSentinelDown and RedisSentinelQuorumLost fire, and resolve once they are back."""
    if shutil.which("prometheus") is None:
        unavailable("prometheus is not installed (apt-get install prometheus)")
    _settled(stack)
    settings = stack.settings
    document = yaml.safe_load(alerts.render(settings))
    for group in document["groups"]:
        for rule in group["rules"]:
            rule["for"] = "0s"
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    prometheus = Prometheus(tmp_path, alerts.scrape_configs(settings), tmp_path / "rules.yml")
    job = alerts.sentinel_job(settings)
    wanted = {("RedisSentinelDown", job), ("RedisSentinelQuorumLost", job)}
    stopped = topology.sentinels(settings)[1:]
    try:
        _wait(
            lambda: len(prometheus.query(f'redis_sentinel_master_ckquorum_status{{job="{job}"}} == 1')) == 3,
            60,
            "every Sentinel's quorum scraped",
        )
        # Evaluated before the first scrape, absent() fires (`for` is 0 s here, 1m in the rules).
        _wait(lambda: not wanted & prometheus.firing(), 30, "no Sentinel alert before the fault")
        cut = time.monotonic()
        for sentinel in stopped:
            _container(stack, sentinel).stop(timeout=1)
        _wait(lambda: wanted <= prometheus.firing(), DOWN_AFTER_MS / 1000 + QUORUM_ALERT_SLACK, "both alerts firing")
        fired = time.monotonic() - cut
        # Fired for the right reason: the Sentinel left says its CKQUORUM fails.
        [left] = prometheus.query(f'redis_sentinel_master_ckquorum_status{{job="{job}"}} == 0')
        assert left["metric"]["message"].startswith("NOQUORUM"), left
        back = time.monotonic()
        for sentinel in stopped:
            _container(stack, sentinel).start()
        _wait(lambda: not wanted & prometheus.firing(), QUORUM_RESOLVE_WITHIN, "both alerts resolved")
        resolved = time.monotonic() - back
    finally:
        for sentinel in stopped:
            with contextlib.suppress(Exception):
                _container(stack, sentinel).start()
        prometheus.stop()
    print(f"\nSentinel quorum lost (2 of 3 stopped): alerts fired after {fired:.1f} s, resolved {resolved:.1f} s after")
    what = "RedisSentinelDown and RedisSentinelQuorumLost"
    write_results(
        "quorum-alerts",
        f"{STACK} stack file, topology sentinel, 3 Docker hosts; a real Prometheus, the generated rules with `for` 0 s",
        [
            results.figure(
                f"{what}: fired after two of three Sentinels stopped",
                [fired],
                bound=DOWN_AFTER_MS / 1000 + QUORUM_ALERT_SLACK,
                bound_from="downAfterMilliseconds + QUORUM_ALERT_SLACK for scrapes and evaluation",
            ),
            results.figure(
                f"{what}: resolved after they started again",
                [resolved],
                bound=QUORUM_RESOLVE_WITHIN,
                bound_from="QUORUM_RESOLVE_WITHIN, for scrapes and evaluation once they are back",
            ),
        ],
    )
    _settled(stack)


def _container(stack: Stack, placed: topology.Placed):  # type: ignore[no-untyped-def]
    client = stack.host_of(placed.endpoint).client
    assert client is not None
    return client.containers.get(placed.container_name)


def test_the_durable_write_benchmark_runs(stack: Stack) -> None:
    """`benchmark durable` end to end (no timing asserted: the table is for the README)."""
    _settled(stack)
    result = stack.cli("benchmark", "durable", "--stack", STACK, "--writes", "2000")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = result.stdout.splitlines()[2:]
    assert [row.split("  ")[0] for row in rows] == ["plain SET", "durable SET + WAIT 1 1000"], result.stdout
    print("\n" + result.stdout)
    assert not stack.app().keys("bench-durable:*"), "the benchmark left keys behind"


def _settled_primary(stack: Stack) -> tuple[str, DockerHost]:
    """The primary once settled, and the host it runs on."""
    _settled(stack)
    primary = stack.primary()
    assert primary is not None
    host = stack.host_of(primary)
    assert host.client is not None
    return primary, host


@dataclass
class Measured:
    """One fault's figures, over one run or several."""

    acked: int  # acknowledged writes
    lost: list[int]  # each run's acknowledged writes missing afterwards
    pauses: list[float]  # each run's longest time without a successful write (s)
    new_primary: list[float] = field(default_factory=list)  # each run's time to a new primary (s)

    @classmethod
    def of(cls, writer: Writer, lost: int, new_primary: float | None = None) -> Measured:
        return cls(len(writer.acked), [lost], [writer.longest_gap], [] if new_primary is None else [new_primary])

    @classmethod
    def over(cls, runs: list[Measured]) -> Measured:
        return cls(
            sum(r.acked for r in runs),
            [n for r in runs for n in r.lost],
            [t for r in runs for t in r.pauses],
            [t for r in runs for t in r.new_primary],
        )


# Runs of each fault below (the planned change and Celery have their own counts).
FAULT_RUNS = 3


def _spread(values: list[float]) -> str:
    """One run's figure, or min / median / max over the runs."""
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f} s"
    return f"{min(values):.1f} / {statistics.median(values):.1f} / {max(values):.1f} s ({len(values)} runs)"


def _lost(per_run: list[int]) -> str:
    return str(per_run[0]) if len(per_run) == 1 else f"{sum(per_run)} (at most {max(per_run)} in a run)"


def _record(fault: str, measured: Measured, afterwards: str) -> None:
    """The fault's row of the printed table, then its bound asserted."""
    RESULTS[fault] = {
        "time to a new primary": _spread(measured.new_primary),
        "longest time without a successful write": _spread(measured.pauses),
        "acknowledged writes": str(measured.acked),
        "acknowledged writes lost": _lost(measured.lost),
        "primary afterwards": afterwards,
    }
    bound = BOUNDS[fault]
    lost_from = FROM_REPLICATION if bound.lost else "AOF everysec; writes wait during a handover"
    _figure(fault, "acknowledged writes lost", [float(n) for n in measured.lost], bound.lost, lost_from, "writes")
    _figure(fault, "longest time without a successful write", measured.pauses, bound.pause, bound.pause_from)
    if bound.new_primary is not None:
        _figure(fault, "time to a new primary", measured.new_primary, bound.new_primary, FROM_ELECTION)
    most = max(measured.lost)
    assert most <= bound.lost, f"{fault}: {most} acknowledged writes lost in a run, bound {bound.lost}"
    longest = max(measured.pauses)
    assert longest <= bound.pause, f"{fault}: writes paused {longest:.1f} s, bound {bound.pause}"
    if bound.new_primary is not None:
        slowest = max(measured.new_primary, default=None)
        assert slowest is not None and slowest <= bound.new_primary, (
            f"{fault}: a new primary after {slowest} s, bound {bound.new_primary} s"
        )


def _new_primary(stack: Stack, before: str) -> float:
    """Seconds until the Sentinels name another primary than `before`."""
    started = time.monotonic()
    _wait(lambda: stack.primary() not in (None, before), 60, "a new primary")
    return time.monotonic() - started


def _rejoins_as_replica(stack: Stack, endpoint: str) -> None:
    """Sentinel turns a former primary into a replica of the new one once it reaches it."""

    def replica() -> bool:
        try:
            return stack.node_admin(endpoint).info("replication")["role"] == "slave"
        except redis.RedisError:
            return False

    _wait(replica, 60, f"{endpoint} to rejoin as a replica")
    _settled(stack)


def _writes_resume(writer: Writer, timeout: float = 60) -> None:
    count = len(writer.acked)
    _wait(lambda: len(writer.acked) > count + 10, timeout, "writes to succeed again")


def test_verify_monitor_and_smoke_work_through_sentinel(stack: Stack) -> None:
    """The tools find the primary through Sentinel (the outputs name node 0): verify checks
    its container on its host's engine, monitor shows the replication rows."""
    _settled(stack)
    checked = stack.cli("verify", "--stack", STACK)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    found = stack.cli("monitor", "--stack", STACK, "--json")
    assert found.returncode in (0, 1), found.stderr
    rows = {m["name"]: m for m in json.loads(found.stdout)["metrics"]}
    assert rows["replicas online"]["value"] == "2 of 2"
    assert rows["Sentinel's view"]["status"] == "OK", rows["Sentinel's view"]
    assert rows["failovers"]["status"] == "OK"
    smoke = stack.cli("smoke", "--stack", STACK)
    assert smoke.returncode == 0, smoke.stdout + smoke.stderr


def test_verify_reads_every_node_and_sentinel(stack: Stack) -> None:
    """A replica or a Sentinel that runs another value than the stack declares (an online
    change it missed) fails verify, which names it; not only the primary is read."""
    _settled(stack)
    primary = stack.primary()
    replica = next(n.endpoint for n in topology.nodes(stack.settings) if n.endpoint != primary)
    sentinel = topology.sentinels(stack.settings)[1].endpoint
    admin = stack.settings.admin_username
    stack.node_admin(replica).config_set("maxclients", 321)
    stack.node_admin(sentinel).execute_command("SENTINEL", "SET", NAME, "failover-timeout", FAILOVER_TIMEOUT_MS + 1)
    stack.node_admin(sentinel).execute_command("ACL", "SETUSER", admin, ">another-admin-password")
    # The topology's own user, which a replica links with once it is primary: unused until then.
    stack.node_admin(replica).execute_command("ACL", "SETUSER", "replication", ">another-replication-password")
    try:
        checked = stack.cli("verify", "--stack", STACK)
    finally:
        stack.node_admin(replica).config_set("maxclients", stack.settings.maxclients)
        stack.node_admin(sentinel).execute_command("SENTINEL", "SET", NAME, "failover-timeout", FAILOVER_TIMEOUT_MS)
        stack.node_admin(sentinel).execute_command("ACL", "SETUSER", admin, "<another-admin-password")
        stack.node_admin(replica).execute_command("ACL", "SETUSER", "replication", "<another-replication-password")
    assert checked.returncode == 1, checked.stdout + checked.stderr
    for check, named in (
        ("every node runs the online settings and follows the primary", [replica]),
        ("every sentinel monitors the primary as declared", [sentinel]),
        (
            "every node and sentinel accepts the same passwords",
            [f"{replica}: other passwords for replication", f"{sentinel}: other passwords for {admin}"],
        ),
    ):
        row = next(line for line in checked.stdout.splitlines() if line.startswith(check))
        assert " FAIL " in row and all(name in row for name in named), row


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("adminPassword=a-new-admin-password", "redis:adminUsername / redis:adminPassword"),
        ("adminUsername=another-admin", "redis:adminUsername / redis:adminPassword"),
        ("replicationPassword=a-new-replication-password", "redis:replicationPassword"),
        ("sentinelPassword=a-new-sentinel-password", "redis:sentinelPassword"),
    ],
)
def test_a_credential_change_is_refused_before_anything_changes(stack: Stack, change: str, named: str) -> None:
    """The handover would ask the running servers with the new credentials (refused: no
    handover), and a replaced replica could not link: `up` asks them first and refuses."""

    def containers() -> dict[str, str]:
        return {c.name: c.id for host in stack.hosts if host.client for c in host.client.containers.list(all=True)}

    before = containers()
    result = stack.sandbox.attempt(change)
    assert result.returncode == 1, stack.sandbox.last_output[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith(f"bizosaas-redis up: {named}: ") and " refuses the new value; " in line, line
    assert line.endswith("nothing was changed") and change.split("=")[1] not in line, line
    assert containers() == before, "no container was replaced or created"


def test_a_password_rotation_refuses_no_client_through_sentinel(stack: Stack) -> None:
    """`rotate start` of the application password, then of the admin's, then both `finish`:
    each `up` sets the users on every running node and Sentinel (ACL SETUSER, as the admin
    with the password they hold, the previous one during the admin's rotation): none is
    restarted and the primary stays. Clients through Sentinel on the old and on the new
    application password are never refused until finish; no acknowledged write is lost;
    after finish the old one is refused."""
    _settled(stack)
    old, master = stack.app_url()
    primary = stack.primary()
    endpoints = [node.endpoint for node in topology.nodes(stack.settings)]
    endpoints += [sentinel.endpoint for sentinel in topology.sentinels(stack.settings)]
    run_ids = _run_ids(stack, endpoints)

    def knocker(url: str) -> Knocker:
        return Knocker(lambda: stack.app((url, master)))

    def rotate(step: str, user: str, *flags: str) -> None:
        stack.sandbox.run("rotate", step, "--stack", STACK, "--user", user, *flags)
        stack.sandbox._outputs = None  # the outputs changed
        assert old.rpartition("@")[0] not in stack.sandbox.last_output, f"rotate {step} printed a password"

    with Writer(stack, "rotation:") as writer, knocker(old) as on_old:
        rotate("start", "app", "--no-verify")
        new, _ = stack.app_url()
        with knocker(new) as on_new:
            rotate("start", "admin", "--no-verify")
            rotate("finish", "admin")  # verify and smoke with the new admin password
    print(f"\nrotation through Sentinel: old password {on_old}, new password {on_new}")
    assert on_old.refused == 0 and on_new.refused == 0, (on_old, on_new)
    assert on_old.accepted > 0 and on_new.accepted > 0
    assert writer.lost() == 0
    rotate("finish", "app", "--no-verify")
    with pytest.raises(redis.RedisError) as raised:
        knocker(old).knock()
    assert harness.refused(raised.value), raised.value
    assert knocker(new).knock()
    assert stack.primary() == primary, "a rotation handed the primary over"
    assert _run_ids(stack, endpoints) == run_ids, "a rotation restarted a node or Sentinel"
    stack.sandbox.run("preview", "--stack", STACK, "--expect-no-changes")


def _answers(endpoint: str, user: str, password: str) -> bool:
    """Whether a node or Sentinel takes `user` with `password` (False: WRONGPASS)."""
    host, _, port = endpoint.rpartition(":")
    client = redis.Redis(host=host, port=int(port), username=user, password=password, socket_timeout=2)
    try:
        return bool(client.ping())
    except redis.AuthenticationError:
        return False
    finally:
        client.close()


def test_the_replication_and_sentinel_passwords_rotate_with_a_failover_between(stack: Stack) -> None:
    """`rotate start` of both topology passwords (the next ones accepted everywhere, set
    online: no restart), a failover, `rotate switch` (the nodes' masterauth and the
    Sentinels' auth-pass and sentinel-pass move: nodes replaced with a handover, then the
    Sentinels), `rotate finish` (the old ones removed, online). Throughout: every replica
    links again, the Sentinels agree on the primary, no acknowledged write is lost; after
    finish the old passwords are refused on every node and Sentinel and the new ones taken.
    The failover between is the project's handover."""
    _settled(stack)
    nodes = [node.endpoint for node in topology.nodes(stack.settings)]
    sentinels = [sentinel.endpoint for sentinel in topology.sentinels(stack.settings)]
    old = {user: stack.outputs()[f"{user}_password"] for user in ("replication", "sentinel")}

    def rotate(step: str, user: str) -> None:
        stack.sandbox.run("rotate", step, "--stack", STACK, "--user", user, "--no-verify")
        stack.sandbox._outputs = None  # the outputs changed
        assert old[user] not in stack.sandbox.last_output, f"rotate {step} printed a password"

    with Writer(stack, "topology-rotation:") as writer:
        run_ids = _run_ids(stack, nodes + sentinels)
        rotate("start", "replication")
        rotate("start", "sentinel")
        assert _run_ids(stack, nodes + sentinels) == run_ids, "rotate start restarted a node or Sentinel"
        # The failover between: the project's handover (writes paused while the replica
        # catches up: a bare SENTINEL FAILOVER drops the writes the old primary acknowledges
        # after the promotion, which is Sentinel's, not the rotation's).
        primary = next(node for node in topology.nodes(stack.settings) if node.endpoint == stack.primary())
        admin = urllib.parse.unquote(urllib.parse.urlsplit(stack.outputs()["redis_admin_url"]).password or "")
        assert handover.move_primary_away(stack.settings, primary, admin) is not None
        _settled(stack)
        rotate("switch", "replication")
        _settled(stack)
        rotate("switch", "sentinel")
        _settled(stack)
        rotate("finish", "replication")
        rotate("finish", "sentinel")
    new = {user: stack.outputs()[f"{user}_password"] for user in ("replication", "sentinel")}
    assert new["replication"] != old["replication"] and new["sentinel"] != old["sentinel"]
    print(f"\nreplication and Sentinel passwords rotated with a failover between: {writer}")
    assert writer.lost() == 0
    for endpoint in nodes:
        assert not _answers(endpoint, "replication", old["replication"]), endpoint
        assert _answers(endpoint, "replication", new["replication"]), endpoint
    for endpoint in nodes + sentinels:
        assert not _answers(endpoint, "sentinel", old["sentinel"]), endpoint
        assert _answers(endpoint, "sentinel", new["sentinel"]), endpoint
    for endpoint in sentinels:
        found = stack.node_admin(endpoint).sentinel_master(NAME)
        assert found["num-other-sentinels"] == len(sentinels) - 1 and found["num-slaves"] == len(nodes) - 1, found
        assert "s_down" not in found["flags"] and "o_down" not in found["flags"], found
    stack.sandbox.run("verify", "--stack", STACK)
    stack.sandbox.run("preview", "--stack", STACK, "--expect-no-changes")


def _run_ids(stack: Stack, endpoints: list[str]) -> dict[str, str]:
    return {e: stack.node_admin(e).info("server")["run_id"] for e in endpoints}


def test_an_online_setting_changes_every_node_without_a_handover(stack: Stack) -> None:
    """A change of settings Redis applies while it runs (maxclients, timeout, and those of
    the nodes alone, minReplicasToWrite and minReplicasMaxLag) and of those Sentinel does
    (downAfterMilliseconds, failoverTimeout): set on every node and Sentinel
    by their RedisOnlineSettings, none restarted, the primary not handed over, no
    acknowledged write lost through Sentinel, none waiting longer than a blip."""
    _settled(stack)
    primary = stack.primary()
    nodes = [node.endpoint for node in topology.nodes(stack.settings)]
    sentinels = [sentinel.endpoint for sentinel in topology.sentinels(stack.settings)]
    run_ids = _run_ids(stack, nodes + sentinels)
    timing = {"down-after-milliseconds": DOWN_AFTER_MS + 1000, "failover-timeout": FAILOVER_TIMEOUT_MS + 1000}
    with Writer(stack, "online:") as writer:
        stack.sandbox.up(
            "maxclients=555",
            "timeout=40",
            "minReplicasToWrite=0",
            f"minReplicasMaxLag={MAX_LAG + 1}",
            f"downAfterMilliseconds={timing['down-after-milliseconds']}",
            f"failoverTimeout={timing['failover-timeout']}",
        )
    assert stack.primary() == primary, "an online change handed the primary over"
    assert _run_ids(stack, nodes + sentinels) == run_ids, "an online change restarted a node or Sentinel"
    for endpoint in nodes:
        admin = stack.node_admin(endpoint)
        assert admin.config_get("maxclients") == {"maxclients": "555"}, endpoint
        assert admin.config_get("timeout") == {"timeout": "40"}, endpoint
        assert admin.config_get("min-replicas-*") == {
            "min-replicas-to-write": "0",
            "min-replicas-max-lag": str(MAX_LAG + 1),
        }, endpoint
    for endpoint in sentinels:
        found = stack.node_admin(endpoint).sentinel_master(NAME)
        assert {key: found[key] for key in timing} == timing, endpoint
    print(
        f"\nonline change on 3 nodes and 3 Sentinels: {len(writer.acked)} writes, "
        f"longest wait {writer.longest_gap * 1000:.0f} ms"
    )
    assert writer.lost() == 0 and writer.longest_gap < ONLINE_PAUSE_BOUND, writer.longest_gap
    stack.sandbox.run("preview", "--stack", STACK, "--expect-no-changes")
    # Back to what the fault tests' bounds (ELECTION, the lag) are computed from, online too.
    stack.sandbox.up(
        "minReplicasToWrite=1",
        f"minReplicasMaxLag={MAX_LAG}",
        f"downAfterMilliseconds={DOWN_AFTER_MS}",
        f"failoverTimeout={FAILOVER_TIMEOUT_MS}",
    )
    assert _run_ids(stack, nodes + sentinels) == run_ids
    assert stack.node_admin(sentinels[0]).sentinel_master(NAME)["down-after-milliseconds"] == DOWN_AFTER_MS
    assert stack.node_admin(primary).config_get("min-replicas-max-lag") == {"min-replicas-max-lag": str(MAX_LAG)}


def test_killed_primary_process_restarted_by_docker(stack: Stack) -> None:
    """SIGKILL to the primary's Redis (as the OOM killer sends): Docker restarts it at once,
    before Sentinel's down-after; its start script asks Sentinel and it stays the primary."""
    runs, stayed = [], 0
    for run in range(FAULT_RUNS):
        before, host = _settled_primary(stack)
        pid = host.client.api.inspect_container(stack.container_at(before))["State"]["Pid"]
        with Writer(stack, f"crash{run}:") as writer:
            os.kill(pid, 9)
            time.sleep(0.5)
            _writes_resume(writer)
        runs.append(Measured.of(writer, writer.lost()))
        stayed += stack.primary() == before
    _record(
        "primary's Redis killed, Docker restarts it", Measured.over(runs), f"the same node in {stayed} of {FAULT_RUNS}"
    )
    # Docker restarts it before Sentinel's down-after: no failover, as the README states.
    assert stayed == FAULT_RUNS, f"the primary moved in {FAULT_RUNS - stayed} of {FAULT_RUNS} runs"


def test_killed_primary_that_stays_down_fails_over(stack: Stack) -> None:
    """The primary's container killed and not restarted: a replica is promoted."""
    runs = []
    for run in range(FAULT_RUNS):
        before, host = _settled_primary(stack)
        container = host.client.containers.get(stack.container_at(before))
        with Writer(stack, f"kill{run}:") as writer:
            container.kill()  # SIGKILL; a killed container stays down
            elected = _new_primary(stack, before)
            _writes_resume(writer)
        runs.append(Measured.of(writer, writer.lost(replicas=1), elected))
        # Started again, its start script asks Sentinel: it rejoins as a replica, not a second primary.
        container.start()
        _rejoins_as_replica(stack, before)
    _record("primary's Redis killed, stays down", Measured.over(runs), "a replica, promoted")


# A host-stop pause longer than this prints the writer's failures (untraced 12-13 s pauses).
LONG_PAUSE = 6.0


def test_primary_host_stopped(stack: Stack) -> None:
    runs = []
    for run in range(FAULT_RUNS):
        before, host = _settled_primary(stack)
        stopped = host.client.containers.list()
        with Writer(stack, f"host{run}:") as writer:
            cut = time.monotonic()
            host.cut_off()  # the machine goes silent, then its processes are gone
            for container in stopped:
                container.kill()
            elected = _new_primary(stack, before)
            _writes_resume(writer)
        runs.append(Measured.of(writer, writer.lost(replicas=1), elected))
        if writer.longest_gap > LONG_PAUSE:  # where the time went, for the README
            print(
                f"\nhost {host.index} stopped: new primary after {elected:.1f} s, writes paused "
                f"{writer.longest_gap:.1f} s; failed writes:\n{writer.failure_timeline(cut)}"
            )
        host.reconnect()
        for container in stopped:
            container.start()
        _rejoins_as_replica(stack, before)
    _record("primary's host stopped (link down, every container killed)", Measured.over(runs), "a replica, promoted")


WRITE_INSIDE = textwrap.dedent(
    """
    import sys, time, redis
    from bizosaas_redis_patterns import Durability
    url, prefix, seconds, replicas = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=1)
    durability = Durability(replicas, 1000)
    acked, refused, n, end = [], 0, 0, time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            durability.write(client, lambda pipe: pipe.set(prefix + str(n), n))
            acked.append(f"{n}@{time.monotonic():.3f}")
        except redis.RedisError:
            refused += 1
            time.sleep(0.05)
        n += 1
        time.sleep(0.005)
    print(refused, *acked)
    """
)


def _write_inside(host: DockerHost, url: str, prefix: str, seconds: float, replicas: int) -> subprocess.Popen[str]:
    """A writer on the primary's side of the cut (in its host's namespace), writing to it directly."""
    return subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            host.name,
            sys.executable,
            "-c",
            WRITE_INSIDE,
            url,
            prefix,
            str(seconds),
            str(replicas),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def _acked(writer: subprocess.Popen[str], timeout: float) -> tuple[int, dict[int, float]]:
    """(writes refused, {write: when acknowledged, monotonic clock})."""
    stdout, _ = writer.communicate(timeout=timeout)
    refused, *acked = stdout.split()
    return int(refused), {int(n): float(t) for n, t in (a.split("@") for a in acked)}


@dataclass
class PartitionRun:
    elected: float  # time to a new primary (s)
    plain: int  # plain writes acknowledged
    durable: int
    lost_plain: int
    lost_durable: int
    refused: int  # plain writes refused after the lag (NOREPLICAS)
    taken: float  # how long after the cut the old primary still acknowledged a write (s)


def test_partitioned_primary_loses_no_durable_write(stack: Stack) -> None:
    """Two clients on the primary's side of a partition write to it directly, one plain, one
    durable (each write confirmed by a replica, WAIT), FAULT_RUNS times. The cut-off primary
    refuses writes once its replicas' acknowledgements are older than minReplicasMaxLag
    (NOREPLICAS); the plain writes it took before that are lost when it rejoins (bounded by
    that window), the durable ones never were acknowledged; it rejoins as a replica, with no
    second history."""
    runs = [_partition_once(stack, f"part{run}") for run in range(FAULT_RUNS)]
    partition = "primary partitioned from the rest"
    _figure(partition, "time to a new primary", [r.elected for r in runs], ELECTION, FROM_ELECTION)
    taken_from = "minReplicasMaxLag, plus a replica's acknowledgement and the primary's recount"
    _figure(partition, "writes taken after the cut", [r.taken for r in runs], PARTITION_WRITES_TAKEN, taken_from)
    durable_from = "a durable write waits for a replica (WAIT)"
    _figure(partition, "durable writes lost", [float(r.lost_durable) for r in runs], 0, durable_from, "writes")
    RESULTS["primary partitioned from the rest (its clients write to it)"] = {
        "time to a new primary": _spread([r.elected for r in runs]),
        "longest time without a successful write": "- (its clients see only the old primary)",
        "acknowledged writes": f"{sum(r.plain for r in runs)} plain, {sum(r.durable for r in runs)} durable",
        "acknowledged writes lost": f"{_lost([r.lost_plain for r in runs])} plain (then "
        f"{sum(r.refused for r in runs)} refused: NOREPLICAS, writes taken {_spread([r.taken for r in runs])} "
        f"after the cut), {sum(r.lost_durable for r in runs)} durable",
        "primary afterwards": "a replica, promoted",
    }


def _partition_once(stack: Stack, prefix: str) -> PartitionRun:
    """One partition under the two writers, its bounds asserted."""
    _settled(stack)
    before = stack.primary()
    assert before is not None
    host = stack.host_of(before)
    head, _, _ = stack.outputs()["redis_url"].rpartition("@")
    url = f"{head}@{before}/0"
    seconds = DOWN_AFTER_MS / 1000 + MAX_LAG + 6
    writers = {replicas: _write_inside(host, url, f"{prefix}-{replicas}:", seconds, replicas) for replicas in (0, 1)}
    time.sleep(1)
    # Writes acknowledged while `ip link set down` runs are on the old side of the cut.
    cut_at = time.monotonic()
    host.cut_off()
    _wait(lambda: stack.primary() not in (None, before), 60, "a new primary on the majority side")
    elected = time.monotonic() - cut_at
    (refused, plain), (refused_durable, durable) = (_acked(writers[r], seconds + 30) for r in (0, 1))
    host.reconnect()
    _settled(stack)
    _rejoins_as_replica(stack, before)
    plain_keys = [f"{prefix}-0:{n}" for n in plain]
    lost_plain = missing_on_primary(stack, plain_keys)
    lost_durable = missing_on_primary(stack, [f"{prefix}-1:{n}" for n in durable])
    after_cut = [t - cut_at for t in plain.values() if t > cut_at]
    taken = max(after_cut, default=0.0)
    assert lost_durable == 0, "a durable write confirmed by a replica was lost"
    assert refused > 0 and refused_durable > 0, "the isolated primary never refused a write (minReplicasToWrite)"
    assert elected <= ELECTION, f"a new primary after {elected:.1f} s, bound {ELECTION} s"
    assert taken <= PARTITION_WRITES_TAKEN, f"the cut-off primary took writes for {taken:.1f} s"
    assert lost_plain <= len(after_cut) + 1, (
        f"{lost_plain} plain writes lost, {len(after_cut)} acknowledged after the cut"
    )
    # No second history: every node holds the same writes (the old primary resynced).
    counts = {
        node.endpoint: sum(
            int(stack.node_admin(node.endpoint).exists(*plain_keys[i : i + 1000]))
            for i in range(0, len(plain_keys), 1000)
        )
        for node in topology.nodes(stack.settings)
    }
    assert len(set(counts.values())) == 1, counts
    return PartitionRun(elected, len(plain), len(durable), lost_plain, lost_durable, refused, taken)


# Each run changes the number of databases, a setting that needs a new container (every
# node replaced, the Sentinels not; the eviction policy or loglevel, applied without a
# restart, would replace none); runs alternate values.
PLANNED_RUNS = 5
DATABASES = (17, 16)


def test_planned_change_hands_the_primary_over(stack: Stack) -> None:
    """`pulumi up` replacing every node, PLANNED_RUNS times under a writer: the primary's
    node hands the role over first, to a node already replaced, so no node hands over twice
    in a run; writes pause under the bound, none acknowledged is lost."""
    runs, handovers, aborted, switched = [], 0, [], []
    for run in range(PLANNED_RUNS):
        _settled(stack)
        with Writer(stack, f"planned{run}:") as writer:
            output = stack.sandbox.up(f"databases={DATABASES[run % len(DATABASES)]}")
        replaced = set(re.findall(r"Container (\S+)-container replaced", output))
        assert len(replaced) == len(topology.nodes(stack.settings)), output
        assert not any("sentinel" in r for r in replaced), output
        # Pulumi prints a log message as it happens and again under "Diagnostics:".
        diagnostics = output.partition("Diagnostics:")[2]
        handed = re.findall(r"(\S+) handed the primary role to \S+", diagnostics)
        # The primary's replacement went through a handover; no node handed over twice.
        assert handed and len(handed) == len(set(handed)), output[-4000:]
        runs.append(Measured.of(writer, writer.lost()))
        handovers += len(handed)
        # Each aborted attempt paused writes up to handover.ATTEMPT s; the hook says why.
        aborted += re.findall(r"handed the primary role to .* after \d+ aborted attempt\(s\): (.*)", diagnostics)
        switched += [float(t) for t in re.findall(r"every Sentinel named it ([\d.]+) s later", diagnostics)]
        said = "; ".join(re.findall(r"handed the .*", diagnostics))
        print(f"\nplanned run {run}: pause {runs[-1].pauses[0]:.1f} s; {said}")
    print(f"planned change: aborted handover attempts: {aborted or 'none'}; every Sentinel switched {switched} s after")
    _record(
        "planned change replacing every node (pulumi up)",
        Measured.over(runs),
        f"handed over {handovers} times in {PLANNED_RUNS} runs (SENTINEL FAILOVER), {len(aborted)} retried",
    )


# Celery across failovers: CELERY_RUNS of each fault, one worker for all of them.
CELERY_RUNS = 10
CELERY_TASKS = 200  # queued before each fault
LATE_TASKS = 20  # queued once a new primary is elected: they run only if the worker resumed
# Kombu's Redis transport takes a message off the queue (BRPOP), then records it as
# unacknowledged: one taken when the primary dies can be lost (README, "Celery").
LOST_PER_FAULT = 1
# Kombu redelivers a message left in its unacknowledged set once it is this old (s); the
# test lowers it from Kombu's hour so that the redelivery is seen.
VISIBILITY = 15
# A partitioned worker drops its half-open BRPOP connection once a reply is
# health_check_interval overdue (Kombu checks every health_check_interval).
RESUMES_WITHIN = ELECTION + 2 * BROKER_HEALTH_CHECK + 10
STREAM_ENTRIES, PENDING = 500, 100


@dataclass
class CeleryRig:
    """A sender, one real worker (solo pool) and a reader of the stored results, through
    Sentinel with the stack's transport options."""

    stack: Stack
    prefix: str = "ha-celery:"
    queue: str = "ha-tasks"

    def __post_init__(self) -> None:
        secrets_env = self.stack.outputs()["consumer_secrets"]
        self.transport = {
            **json.loads(secrets_env["CELERY_BROKER_TRANSPORT_OPTIONS"]),
            "visibility_timeout": VISIBILITY,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        }
        self.broker, self.backend = secrets_env["CELERY_BROKER_URL"], secrets_env["CELERY_RESULT_BACKEND"]
        # The sender keeps no result subscriptions; the worker stores results, read below.
        self.sender = smoke_celery.make_app(self.broker, "disabled://", self.prefix, self.queue, self.transport)
        self.reader = connect(self.backend, self.transport["master_name"], decode_responses=True, socket_timeout=2)
        self.worker = smoke_celery.start_worker(self.broker, self.backend, self.prefix, self.queue, self.transport)
        self.sent = 0

    def send(self, count: int) -> list[str]:
        """Task ids; a publish that fails mid-failover is sent again, as a service would,
        until ELECTION has passed since the last one that went through."""
        ids: list[str] = []
        deadline = time.monotonic() + ELECTION
        while len(ids) < count:
            try:
                ids.append(self.sender.send_task("smoke.add", args=(self.sent, 1), queue=self.queue).id)
                self.sent += 1
                deadline = time.monotonic() + ELECTION
            except Exception as failed:  # kombu raises its own errors and redis-py's
                assert time.monotonic() < deadline, f"no task published for {ELECTION:.0f} s: {failed!r}"[:300]
                time.sleep(0.2)
        return ids

    def ran(self, ids: list[str]) -> int:
        """Tasks of `ids` whose result is stored (none while no primary answers)."""
        try:
            found = self.reader.mget([smoke_celery.result_key(self.prefix, task_id) for task_id in ids])
        except redis.RedisError:
            return 0
        return sum(1 for raw in found if raw and json.loads(raw)["status"] == "SUCCESS")

    def stop(self) -> str:
        return smoke_celery.stop_worker(self.worker)


def _kill_primary(stack: Stack) -> Any:
    """The primary's container killed; returns what heals it (started again, a replica)."""
    before, host = _settled_primary(stack)
    container = host.client.containers.get(stack.container_at(before))
    container.kill()
    _new_primary(stack, before)

    def heal() -> None:
        container.start()
        _rejoins_as_replica(stack, before)

    return heal


def _partition_primary(stack: Stack) -> Any:
    """The primary's host cut off (its containers keep running); returns what heals it."""
    before, host = _settled_primary(stack)
    host.cut_off()
    _new_primary(stack, before)

    def heal() -> None:
        host.reconnect()
        _rejoins_as_replica(stack, before)

    return heal


FAULTS = {"primary killed": _kill_primary, "primary partitioned": _partition_primary}


def test_celery_resumes_by_itself_after_kills_and_partitions(stack: Stack) -> None:
    """One real worker through CELERY_RUNS kills and CELERY_RUNS partitions of the primary,
    never restarted: after each, the tasks queued once a new primary is elected run (it
    resumed by itself), and every task queued before the fault runs (at least once: one
    left in Kombu's unacknowledged set is redelivered), but for at most LOST_PER_FAULT."""
    _settled(stack)
    rig = CeleryRig(stack)
    resumed: dict[str, list[float]] = {fault: [] for fault in FAULTS}
    lost: dict[str, list[int]] = {fault: [] for fault in FAULTS}
    try:
        for _ in range(CELERY_RUNS):
            for fault, make in FAULTS.items():
                queued = rig.send(CELERY_TASKS)
                time.sleep(0.3)  # the worker is consuming them when the fault comes
                started = time.monotonic()
                heal = make(stack)
                late = rig.send(LATE_TASKS)
                _wait(lambda late=late: rig.ran(late) == len(late), RESUMES_WITHIN, f"the worker to resume ({fault})")
                resumed[fault].append(time.monotonic() - started)
                heal()
                with contextlib.suppress(AssertionError):
                    _wait(lambda queued=queued: rig.ran(queued) == len(queued), VISIBILITY + 20, "every task")
                lost[fault].append(len(queued) - rig.ran(queued))
        assert rig.worker.process.poll() is None, "the worker exited"
    finally:
        log = rig.stop()
        print(f"\nthe worker's log ends:\n{log[-2000:]}")
    for fault in FAULTS:
        worker = f"Celery worker, {fault}"
        resume_from = "ELECTION plus two of Kombu's health checks"
        _figure(worker, "time to resume", resumed[fault], RESUMES_WITHIN, resume_from)
        lost_tasks = [float(n) for n in lost[fault]]
        _figure(worker, "tasks lost", lost_tasks, LOST_PER_FAULT, "the task in flight at the fault", "tasks")
        RESULTS[f"Celery worker, {fault} ({CELERY_RUNS} runs, {CELERY_TASKS} tasks queued each)"] = {
            "time to a new primary": "-",
            "longest time without a successful write": f"resumed by itself after {_spread(resumed[fault])}",
            "acknowledged writes": f"{CELERY_RUNS * CELERY_TASKS} tasks",
            "acknowledged writes lost": f"{sum(lost[fault])} tasks (per run: {max(lost[fault])} at most)",
            "primary afterwards": "a replica, promoted",
        }
    assert max(max(v) for v in lost.values()) <= LOST_PER_FAULT, lost


def test_a_consumer_group_keeps_its_entries_across_a_failover(stack: Stack) -> None:
    """A stream's entries and its consumer group's pending entries survive the primary's kill."""
    _settled(stack)
    client = connect(*stack.app_url(), decode_responses=True, socket_timeout=2)
    events = EventStream(client, KeySpace("ha-stream:"), "events", "workers", maxlen=10 * STREAM_ENTRIES)
    events.ensure_group()
    for n in range(STREAM_ENTRIES):
        events.publish({"n": n})
    assert len(events.read("consumer-1", count=PENDING)) == PENDING
    heal = _kill_primary(stack)
    _settled(stack, replicas=1)
    primary = stack.primary()
    assert primary is not None
    after = stack.node_admin(primary)  # the primary itself, not a replica a stale answer names
    held = (int(after.xlen(events.stream)), int(after.xpending(events.stream, "workers")["pending"]))
    heal()
    assert held == (STREAM_ENTRIES, PENDING)


def test_backup_and_restore_go_through_sentinel(stack: Stack, tmp_path: Path) -> None:
    """`backup` snapshots the node Sentinel names the primary (after the faults above, rarely
    node 0), on its host; `restore` puts the snapshot back on the primary, and every node
    then holds the backup's keys and none written after it: the replicas resynced from the
    restored primary, no node kept a second history."""
    _settled(stack)
    app = stack.app()
    kept = {f"restore:before:{n}": str(n) for n in range(KEYS_AROUND_BACKUP)}
    later = [f"restore:after:{n}" for n in range(KEYS_AROUND_BACKUP)]
    app.mset(kept)
    primary = stack.primary()
    assert primary is not None
    made = stack.cli("backup", "--stack", STACK, "--dest", str(tmp_path))
    assert made.returncode == 0, made.stdout + made.stderr
    [backup] = tmp_path.glob("*.rdb")
    app.mset(dict.fromkeys(later, "after"))
    restored = stack.cli("restore", "--stack", STACK, str(backup), "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert f"into the primary {stack.container_at(primary)}" in restored.stdout
    _settled(stack)
    for node in topology.nodes(stack.settings):
        admin = stack.node_admin(node.endpoint)

        def holds_the_backup(admin: redis.Redis = admin) -> bool:
            return admin.mget(list(kept)) == list(kept.values()) and admin.exists(*later) == 0

        _wait(holds_the_backup, 60, f"{node.container_name} holding exactly the backup's keys")


def test_destroy_hands_over_and_removes_every_container(stack: Stack) -> None:
    """`bizosaas-redis destroy` of a sentinel stack (last: it ends the module's stack).
    Pulumi runs the nodes' before-delete hooks only while the program runs, and refuses a
    destroy without it."""
    stack.sandbox.destroy()
    placed = (*topology.nodes(stack.settings), *topology.sentinels(stack.settings))
    names = {p.container_name for p in placed}
    left = [c.name for host in stack.hosts if host.client for c in host.client.containers.list(all=True)]
    assert not names & set(left), left
