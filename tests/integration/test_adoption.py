"""Adopting the running service: Redis as the seed's compose file runs it today, taken over
by the staging stack along the README's path ("Adopting the running service"), under the
tests' own names: every key is still there, and the stack manages Redis afterwards."""

from __future__ import annotations

import contextlib
import threading
import time

import docker
import pytest
import redis

from bizosaas_redis_ops.bench.lab import SEED_COMMAND, wait_for
from bizosaas_redis_ops.deploy.sandbox import Sandbox
from conftest import TEST_EXTERNAL_NETWORK, TEST_PREFIX, stand_in_overrides
from dataset import differences, snapshot, write_every_type

NAMES = {
    "containerName": f"{TEST_PREFIX}-adopt",
    "volumeName": f"{TEST_PREFIX}-adopt-data",
    "networkName": TEST_EXTERNAL_NETWORK,
}
# What the README's path may cost: Redis is down from the compose container's stop until
# the stack's container is healthy (`pulumi up` waits for that).
MAX_OUTAGE_SECONDS = 60


class Probe:
    """PINGs the port every 50 ms; the longest time without an answer is the outage (any
    reply counts: NOAUTH once the stack's password is on is Redis answering)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.longest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stop.is_set():
            try:
                redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1).ping()
                answered = True
            except (redis.AuthenticationError, redis.ResponseError):
                answered = True
            except redis.RedisError:
                answered = False
            now = time.monotonic()
            if answered:
                self.longest = max(self.longest, now - last)
                last = now
            time.sleep(0.05)

    def __enter__(self) -> Probe:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@pytest.fixture
def adopting(engine, offline_image):
    sandbox = Sandbox("staging", stand_in_overrides("staging", offline_image, NAMES))
    yield sandbox
    with contextlib.suppress(docker.errors.NotFound):  # the compose container, if the test stopped early
        engine.containers.get(NAMES["containerName"]).remove(force=True)
    sandbox.close(engine)
    sandbox.project.remove()


def test_the_compose_service_is_adopted_with_every_key(engine, adopting, capsys):
    port = adopting.port
    # 1. The service as the seed's compose file runs it: a named volume at /data, the
    # external network, the port, unless-stopped, no password, RDB on its default rules.
    engine.volumes.create(NAMES["volumeName"])
    seed = engine.containers.run(
        adopting.overrides["image"],
        SEED_COMMAND,
        name=NAMES["containerName"],
        detach=True,
        network=TEST_EXTERNAL_NETWORK,
        ports={"6379/tcp": ("127.0.0.1", port)},
        volumes={NAMES["volumeName"]: {"bind": "/data", "mode": "rw"}},
        restart_policy={"Name": "unless-stopped"},
    )
    client = redis.Redis(port=port)
    wait_for(client)
    keys = write_every_type(client, "adopt", count=1000)
    before = snapshot(client, "adopt")
    taken = time.monotonic()
    assert len(before) == keys

    # 2. The README's path: preview (nothing changes yet), stop the compose service (Redis
    # saves on SIGTERM), remove its container (the volume stays), `bizosaas-redis up`.
    previewed = adopting.run("preview", "--stack", "staging", check=False)
    assert previewed.returncode == 0
    assert "docker:index/container:Container::redis-container" in adopting.last_output  # to be created
    assert seed.reload() is None and seed.status == "running"
    with Probe(port) as probe:
        seed.stop(timeout=30)
        seed.remove()
        output = adopting.up()
    outage = probe.longest
    assert "redis-container created" in output and "redis-data created" in output

    # 3. Every key is there, on the same volume, and the stack manages the container.
    admin = redis.Redis.from_url(adopting.outputs()["redis_admin_url"])
    problems = differences(before, snapshot(admin, "adopt"), (time.monotonic() - taken) * 1000)
    assert problems == [], problems[:5]
    assert admin.config_get("appendonly") == {"appendonly": "yes"}, "staging's AOF, seeded from dump.rdb"
    verify = adopting.run("verify", "--stack", "staging", check=False)
    assert verify.returncode == 0, adopting.last_output
    drift = adopting.run("preview", "--stack", "staging", "--expect-no-changes", check=False)
    assert drift.returncode == 0, "the adopted volume is the stack's, with no drift:\n" + adopting.last_output[-3000:]
    assert outage < MAX_OUTAGE_SECONDS
    with capsys.disabled():
        print(f"\nadoption: {keys} keys kept, 0 lost; Redis unavailable {outage:.1f} s (stop, rm, up)")
