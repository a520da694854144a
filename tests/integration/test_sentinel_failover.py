"""Work in progress (issue 14): the rendered replication and Sentinel configuration fails
over for real. A primary, one replica and three Sentinels (host redis-server processes on
loopback); the primary is killed under a writer counting acknowledged writes."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import redis
from redis.sentinel import Sentinel

from bizosaas_redis import redis_conf, sentinel_conf
from bizosaas_redis.settings import build_settings
from bizosaas_redis_ops.docker_engine import free_port
from conftest import RedisProcess

APP, ADMIN, REPLICATION, SENTINEL, CLIENT = "app-pw-1", "admin-pw-1", "repl-pw-1", "sent-pw-1", "client-pw-1"
MASTER = "bizosaas-test"


def _node(tmp_path: Path, name: str, port_of_primary: int | None) -> RedisProcess:
    """A Redis node with the service's configuration plus replication (a replica when
    `port_of_primary` is given), announcing the port it listens on."""
    settings = build_settings({"appendonly": True, "save": []}, "test")
    port = free_port()
    primary = ("127.0.0.1", port_of_primary) if port_of_primary else None
    conf = "\n".join(
        [
            redis_conf.render(settings, APP, ADMIN),
            *sentinel_conf.node_users(REPLICATION, SENTINEL),
            *sentinel_conf.replication_lines("127.0.0.1", port, REPLICATION, 0, 10, primary),
        ]
    )
    workdir = tmp_path / name
    workdir.mkdir()
    process = RedisProcess(conf + "\n", workdir, port=port)
    process.wait_ready()
    return process


def _sentinel(tmp_path: Path, index: int, primary: RedisProcess) -> RedisProcess:
    port = free_port()
    text = sentinel_conf.render_sentinel(
        MASTER, ("127.0.0.1", primary.port), 2, 1000, 5000, SENTINEL, ("127.0.0.1", port), CLIENT
    )
    workdir = tmp_path / f"sentinel{index}"
    workdir.mkdir()
    process = RedisProcess(text, workdir, sentinel=True, port=port)
    process.wait_ready()
    return process


def _master(watch: Sentinel) -> tuple[str, int] | None:
    try:
        return watch.discover_master(MASTER)
    except redis.sentinel.MasterNotFoundError:
        return None


def test_killing_the_primary_promotes_the_replica(tmp_path):
    started: list[RedisProcess] = []
    try:
        primary = _node(tmp_path, "primary", None)
        started.append(primary)
        replica = _node(tmp_path, "replica", primary.port)
        started.append(replica)
        sentinels = [_sentinel(tmp_path, i, primary) for i in range(3)]
        started += sentinels

        watch = Sentinel(
            [("127.0.0.1", s.port) for s in sentinels],
            sentinel_kwargs={"password": CLIENT, "socket_timeout": 1},
            socket_timeout=1,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(watch.discover_slaves(MASTER)) < 1:
            time.sleep(0.2)
        assert watch.discover_master(MASTER) == ("127.0.0.1", primary.port)
        assert watch.discover_slaves(MASTER) == [("127.0.0.1", replica.port)]
        # In sync first: the primary waits repl-diskless-sync-delay (5 s) before the first transfer.
        admin = redis.Redis(port=replica.port, username="admin", password=ADMIN, decode_responses=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and admin.info("replication").get("master_link_status") != "up":
            time.sleep(0.2)
        assert admin.info("replication")["master_link_status"] == "up"

        client = watch.master_for(MASTER, username="default", password=APP, socket_timeout=1)
        acked: list[int] = []
        stop = threading.Event()
        gap = [0.0]

        def write() -> None:
            n, last = 0, time.monotonic()
            while not stop.is_set():
                try:
                    client.set(f"w:{n}", n)
                except (redis.RedisError, OSError):
                    time.sleep(0.05)
                    continue
                now = time.monotonic()
                gap[0] = max(gap[0], now - last)
                last = now
                acked.append(n)
                n += 1
                time.sleep(0.002)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        time.sleep(1)
        primary.proc.kill()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _master(watch) != ("127.0.0.1", replica.port):
            time.sleep(0.1)
        time.sleep(2)
        stop.set()
        writer.join(timeout=10)
        assert watch.discover_master(MASTER) == ("127.0.0.1", replica.port)
        survivor = redis.Redis(port=replica.port, username="default", password=APP)
        lost = [n for n in acked if survivor.get(f"w:{n}") is None]
        print(f"\nfailover: writes paused {gap[0]:.2f} s; {len(lost)} of {len(acked)} acknowledged writes lost")
        assert gap[0] < 15 and lost == []
    finally:
        for process in started:
            process.stop()
