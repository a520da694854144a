"""Faults, bounded and only against containers these tests start: what each costs, measured.

Each test deploys the staging stack file under its own names and a 1 s healthcheck. The
measurements are printed as a table at the end of the module.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bizosaas_redis.constants import REDIS_GID, REDIS_UID, REDIS_USER
from bizosaas_redis_ops import results, tables
from bizosaas_redis_ops.bench.probes import PeakRss
from bizosaas_redis_ops.check import smoke
from conftest import TEST_EXTERNAL_NETWORK, TEST_PREFIX, unavailable
from dataset import differences, snapshot, write_every_type
from harness import Deployment, Writer, write_results

STACK = "staging"
MEASURED: list[tuple[str, str, str]] = []
FIGURES: list[dict[str, object]] = []  # for results/standalone-faults.json
# The longest pause in writes while Docker restarts a killed Redis: the worst run measured
# (results/standalone-faults.json) by results.bound_for; tests/unit/test_bounds.py checks it.
KILL_PAUSE_BOUND = 2.3


def _names(label: str) -> dict[str, str]:
    return {
        "containerName": f"{TEST_PREFIX}-fault-{label}",
        "volumeName": f"{TEST_PREFIX}-fault-{label}-data",
        "networkName": TEST_EXTERNAL_NETWORK,
    }


@pytest.fixture
def deploy(engine, offline_image) -> Iterator:
    """Deploy the staging stack file under a fault's own names; removed afterwards."""
    made: list[Deployment] = []

    def _deploy(label: str, *settings: str) -> Deployment:
        deployment = Deployment(STACK, _names(label), offline_image, settings)
        made.append(deployment)
        deployment.up()
        return deployment

    yield _deploy
    for deployment in made:
        deployment.close(engine)


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    if MEASURED:
        print("\n" + tables.render(["fault", "what was lost", "measured"], MEASURED))
    write_results(
        "standalone-faults", "staging stack file under test names, 1 s healthcheck, a writer throughout", FIGURES
    )


def _container(engine: docker.DockerClient, deployment: Deployment):
    return engine.containers.get(deployment.names["containerName"])


def _wait(condition, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} within {timeout:.0f} s")
        time.sleep(0.1)
    return time.monotonic() - started


def _missing(client: redis.Redis, acked: list[int]) -> list[int]:
    pipe = client.pipeline(transaction=False)
    for n in acked:
        pipe.exists(f"w:{n}")
    return [n for n, there in zip(acked, pipe.execute(), strict=True) if not there]


def _writer(deployment: Deployment) -> Writer:
    return Writer(smoke.with_db(deployment.outputs()["redis_admin_url"], 0), deployment.port)


def test_redis_killed_from_the_host_is_restarted_and_loses_no_acknowledged_write(deploy, engine):
    """As the OOM killer would: SIGKILL to Redis's process, not `docker kill` (a manual stop)."""
    deployment = deploy("kill")  # AOF everysec, as staging
    before = _container(engine, deployment).attrs["RestartCount"]
    with _writer(deployment) as writer:
        time.sleep(0.5)
        os.kill(_container(engine, deployment).attrs["State"]["Pid"], signal.SIGKILL)
        _wait(lambda: _container(engine, deployment).attrs["RestartCount"] > before, 30, "not restarted")
        count = len(writer.acked)
        _wait(lambda: len(writer.acked) > count + 50, 30, "writes did not resume")
    missing = _missing(deployment.admin(), writer.acked)
    MEASURED.append(
        (
            "Redis process killed (SIGKILL from the host), AOF everysec",
            f"{len(missing)} of {len(writer.acked)} acknowledged writes",
            f"restarted by unless-stopped; writes paused {writer.longest_gap:.2f} s",
        )
    )
    fault = "Redis process killed (SIGKILL from the host), AOF everysec"
    for what, values, unit, bound, bound_from in (
        ("longest pause in writes", [writer.longest_gap], "s", KILL_PAUSE_BOUND, "measured"),
        ("acknowledged writes lost", [float(len(missing))], "writes", 0, "AOF everysec: the page cache survives"),
    ):
        FIGURES.append(
            results.figure(
                f"{fault}: {what}", values, unit, fault=fault, figure=what, bound=bound, bound_from=bound_from
            )
        )
    assert missing == []
    assert writer.longest_gap <= KILL_PAUSE_BOUND, f"writes paused {writer.longest_gap:.2f} s, bound {KILL_PAUSE_BOUND}"


def test_redis_killed_with_rdb_only_loses_at_most_what_came_after_the_last_save(deploy, engine):
    deployment = deploy("kill-rdb", "appendonly=false")
    client = deployment.admin()
    client.set("saved", "1")
    client.bgsave()
    _wait(lambda: client.info("persistence")["rdb_bgsave_in_progress"] == 0, 30, "BGSAVE did not finish")
    with _writer(deployment) as writer:
        time.sleep(1)
        os.kill(_container(engine, deployment).attrs["State"]["Pid"], signal.SIGKILL)
        at_kill = len(writer.acked)
        _wait(lambda: len(writer.acked) > at_kill + 50, 30, "writes did not resume")
    missing = _missing(deployment.admin(), writer.acked)
    MEASURED.append(
        (
            "Redis process killed, RDB only (no AOF)",
            f"{len(missing)} of {len(writer.acked)} acknowledged writes",
            "every write since the last RDB save (bound: the save rules, here 60 s / 10 000 changes)",
        )
    )
    FIGURES.append(
        results.figure(
            f"Redis process killed, RDB only (no AOF): acknowledged writes lost, of {len(writer.acked)}",
            [len(missing)],
            "writes",
            bound=at_kill + 1,
            bound_from="every write since the last RDB save, up to the kill",
        )
    )
    assert deployment.admin().get("saved") == b"1"  # the snapshot is intact
    assert 0 < len(missing) <= at_kill + 1  # only what came after the save, up to the kill


def test_maxclients_exhausted_refuses_extra_clients_and_recovers(deploy):
    deployment = deploy("clients", "maxclients=20")
    url = deployment.outputs()["redis_admin_url"]
    held: list[redis.Redis] = []
    refused = ""
    for _ in range(40):  # bounded: twice maxclients
        try:  # a single-connection client connects as it is made
            client = redis.Redis.from_url(url, single_connection_client=True, retry=Retry(NoBackoff(), 0))
            client.ping()
        except redis.ConnectionError as exc:
            refused = str(exc)
            break
        held.append(client)
    assert "max number of clients reached" in refused
    assert all(c.ping() for c in held), "existing clients stopped working"
    for client in held[:5]:
        client.close()
    newcomer = redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0))
    recovered = _wait(lambda: _pings(newcomer), 10, "no new client accepted after others left")
    MEASURED.append(
        (
            "maxclients (20) exhausted",
            "nothing",
            f"client {len(held) + 1} refused ('max number of clients reached'); {len(held)} kept working; "
            f"accepted again {recovered:.2f} s after 5 left",
        )
    )
    FIGURES.append(
        results.figure(
            f"maxclients ({len(held)}) exhausted: a new client accepted after 5 left",
            [recovered],
            bound=10,
            bound_from="the test's wait",
        )
    )
    for client in held[5:]:
        client.close()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


@pytest.fixture
def small_filesystem(tmp_path) -> Iterator[Path]:
    """A 24 MB tmpfs mounted on the host, owned like the image's /data: small enough to fill.
    (A tmpfs volume would not do: Docker mounts it only when the container starts, after the
    config upload, so the upload would vanish under it.)"""
    folder = tmp_path / "small-data"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size=24m,uid={REDIS_UID},gid={REDIS_GID},mode=0755", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        unavailable(f"cannot mount a small tmpfs for /data: {mounted.stderr.strip()}")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], check=False)


def test_a_full_data_volume_refuses_writes_and_recovers_when_space_is_freed(deploy, engine, small_filesystem):
    names = _names("full")
    engine.volumes.create(
        names["volumeName"],
        driver="local",
        driver_opts={"type": "none", "o": "bind", "device": str(small_filesystem)},
    )
    deployment = deploy("full")  # AOF everysec, RDB rules
    container = _container(engine, deployment)
    started_at = container.attrs["State"]["StartedAt"]
    code, _ = container.exec_run(["sh", "-c", "head -c 12000000 /dev/zero > /data/ballast"], user=REDIS_USER)
    assert code == 0
    client = deployment.admin()
    acked, refusal = 0, ""
    for i in range(4000):  # bounded: 4000 × 4 KB, more than the space left
        try:
            client.set(f"fill:{i}", "x" * 4096)
            acked += 1
        except redis.ResponseError as exc:
            refusal = str(exc)
            break
        if i % 50 == 0:
            time.sleep(0.05)  # let the AOF write catch up
    assert refusal.startswith("MISCONF"), refusal or "the volume never filled"
    assert container.exec_run(["rm", "/data/ballast"], user=REDIS_USER)[0] == 0
    resumed = _wait(lambda: _writes(client), 30, "writes did not resume after space was freed")
    assert _container(engine, deployment).attrs["State"]["StartedAt"] == started_at  # no restart needed
    # Nothing on disk is corrupt: a restart loads every acknowledged write.
    _container(engine, deployment).restart()
    _wait(lambda: _pings(deployment.admin()), 30, "not back after restart")
    reloaded = deployment.admin()
    assert sum(reloaded.exists(f"fill:{i}") for i in range(acked)) == acked
    MEASURED.append(
        (
            "/data full (24 MB volume)",
            f"0 of {acked} acknowledged writes (after a restart)",
            f"writes refused with '{refusal.split(':')[0]}: {refusal.split(':', 1)[1].strip()[:50]}…'; "
            f"resumed {resumed:.2f} s after space was freed, no restart",
        )
    )
    FIGURES.extend(
        [
            results.figure(
                f"/data full: acknowledged writes lost, of {acked}",
                [0],
                "writes",
                bound=0,
                bound_from="Redis refuses writes it cannot persist (MISCONF)",
            ),
            results.figure(
                "/data full: writes resumed after space was freed", [resumed], bound=30, bound_from="the test's wait"
            ),
        ]
    )


def _writes(client: redis.Redis) -> bool:
    try:
        return bool(client.set("probe", "1"))
    except redis.RedisError:
        return False


def test_memory_pressure_evicts_without_an_oom_kill(deploy, engine):
    """Write twice maxmemory while snapshots and AOF rewrites fork: evictions, no OOM kill."""
    deployment = deploy("memory", "maxmemory=32mb")  # limit: the default, maxmemory + 64 MB = 96 MB
    container = _container(engine, deployment)
    limit = container.attrs["HostConfig"]["Memory"]
    client = deployment.admin()
    with PeakRss(container.id).sampling() as rss:
        value = os.urandom(512).hex()  # 1 KB, incompressible
        for batch in range(64):  # 64 × 1000 × 1 KB = 64 MB, twice maxmemory
            pipe = client.pipeline(transaction=False)
            for i in range(1000):
                pipe.set(f"pressure:{batch}:{i}", value)
            pipe.execute()
            if batch % 16 == 0:
                with contextlib.suppress(redis.ResponseError):  # one may already run
                    client.bgsave()
                with contextlib.suppress(redis.ResponseError):
                    client.bgrewriteaof()
    peak_rss = rss.peak
    state = _container(engine, deployment).attrs["State"]
    info = client.info()
    MEASURED.append(
        (
            "64 MB written into maxmemory 32mb during BGSAVE and AOF rewrite",
            f"{info['evicted_keys']} keys evicted (allkeys-lru: by design)",
            f"peak RSS {peak_rss / 1024**2:.1f} MB of the {limit / 1024**2:.0f} MB limit; not OOM-killed",
        )
    )
    pressure = "64 MB written into maxmemory 32mb during BGSAVE and AOF rewrite"
    FIGURES.extend(
        [
            results.figure(
                f"{pressure}: peak RSS",
                [peak_rss / 1024**2],
                "MB",
                bound=round(limit / 1024**2),
                bound_from="the container's memory limit (above it, an OOM kill)",
            ),
            results.figure(f"{pressure}: keys evicted (allkeys-lru)", [info["evicted_keys"]], "keys"),
        ]
    )
    assert not state["OOMKilled"] and state["Running"] and _container(engine, deployment).attrs["RestartCount"] == 0
    assert info["evicted_keys"] > 0
    assert 0 < peak_rss < limit


def _dockerd_pid() -> int | None:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if (proc / "comm").read_text().strip() == "dockerd":
                    return int(proc.name)
    return None


def _running(pid: int) -> bool:
    """True while the process runs; an exited one waiting for its parent to reap it is not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.engine_restart
def test_docker_engine_restart_brings_the_container_back_with_its_data(deploy, engine):
    """dockerd stopped (as a host reboot or an engine upgrade does) and started again."""
    from bizosaas_redis_ops.deploy.docker_engine import ensure_engine

    deployment = deploy("engine")
    keys = write_every_type(deployment.admin(), "engine", count=100)
    before = snapshot(deployment.admin(), "engine")
    pid = _dockerd_pid()
    if pid is None or os.geteuid() != 0:
        unavailable("no dockerd process this test may restart (needs root and a local dockerd)")
    started = time.monotonic()
    os.kill(pid, signal.SIGTERM)  # dockerd stops its containers with their stop timeouts
    _wait(lambda: not _running(pid), 90, "dockerd did not stop")
    ensure_engine()
    _wait(lambda: _pings(deployment.admin()), 90, "Redis not back after the engine restart")
    back = time.monotonic() - started
    problems = differences(before, snapshot(deployment.admin(), "engine"), back * 1000)
    MEASURED.append(
        (
            "Docker engine stopped and started",
            f"{len(problems)} of {keys} keys",
            f"back by the restart policy {back:.1f} s after the engine was told to stop",
        )
    )
    FIGURES.extend(
        [
            results.figure(
                f"Docker engine stopped and started: keys lost, of {keys}",
                [len(problems)],
                "keys",
                bound=0,
                bound_from="a graceful stop saves (SIGTERM)",
            ),
            results.figure(
                "Docker engine stopped and started: Redis back after", [back], bound=90, bound_from="the test's wait"
            ),
        ]
    )
    assert problems == []
