"""Adopting the running service as docker compose runs it today (the real `docker-compose`
CLI, the seed's service block, a project name of the tests' own, so the volume is named
`<project>_redis_data` as compose names it), with `bizosaas-redis adopt`: a mismatch is
refused before the old container stops, a failure after the stop rolls back with every key,
and a clean adoption keeps every key of every type."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import redis
import yaml

from bizosaas_redis.constants import LABEL_STACK
from bizosaas_redis.settings import stack_file
from bizosaas_redis_ops import results
from bizosaas_redis_ops.bench.lab import wait_for
from bizosaas_redis_ops.deploy import adopt
from bizosaas_redis_ops.deploy.sandbox import Sandbox
from conftest import TEST_EXTERNAL_NETWORK, TEST_PREFIX, stand_in_overrides, unavailable
from dataset import differences, snapshot, write_every_type
from harness import write_results

PROJECT = f"{TEST_PREFIX}-adopt"  # compose's project: the folder's name, or Dokploy's app name
CONTAINER = f"{TEST_PREFIX}-adopt"
COMPOSE_VOLUME = f"{PROJECT}_redis_data"  # what compose names the seed's `redis_data`
# The stack file's names, as a user starts from: its volume is not compose's.
NAMES = {"containerName": CONTAINER, "volumeName": f"{TEST_PREFIX}-adopt-data", "networkName": TEST_EXTERNAL_NETWORK}
# The seed's service: RDB rules and AOF everysec, no password, 2 GB allkeys-lru.
SEED = [
    "redis-server",
    *("--maxmemory", "2gb", "--maxmemory-policy", "allkeys-lru", "--protected-mode", "no"),
    *("--appendonly", "yes", "--appendfsync", "everysec", "--save", "900 1 300 10 60 10000"),
]
FIGURES: list[dict[str, object]] = []
# Redis does not answer from the old container's stop until the stack's answers: `up`
# creates its container then (docs/how-to/adopt.md). Set from the measured runs
# (results/adoption.json, results.bound_for of the worst; tests/unit/test_bounds.py holds it).
MAX_OUTAGE_S = 9.0
# adopt's last line: the outage, the part of it Redis spent loading, the writes' pause.
SAID = re.compile(
    r"did not answer for (?P<outage>[\d.]+) s(?:, (?P<load>[\d.]+) s of it loading the data)? "
    r"\(writes paused (?P<paused>[\d.]+) s\)"
)


def compose(folder: Path, *args: str) -> subprocess.CompletedProcess:
    if shutil.which("docker-compose") is None:
        unavailable("docker-compose is not installed (scripts/setup installs it)")
    return subprocess.run(
        ["docker-compose", "--project-name", PROJECT, *args], cwd=folder, capture_output=True, text=True, check=True
    )


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    write_results("adoption", "staging stack file under test names, the seed's compose service, 1 s probes", FIGURES)


@contextlib.contextmanager
def compose_service(
    engine: docker.DockerClient, image: str, folder: Path, network: str
) -> Iterator[tuple[Sandbox, redis.Redis]]:
    """The seed's service running under compose on `network`; a sandbox of the staging
    stack file under the tests' names on it, and a client of the service."""
    sandbox = Sandbox("staging", stand_in_overrides("staging", image, {**NAMES, "networkName": network}))
    port = sandbox.port
    service = {
        "image": image,
        "container_name": CONTAINER,
        "command": SEED,
        "ports": [f"127.0.0.1:{port}:6379"],
        "volumes": ["redis_data:/data"],
        "networks": ["dokploy-network"],
        "restart": "unless-stopped",
    }
    document = {
        "version": "3.8",
        "services": {"redis": service},
        "volumes": {"redis_data": {}},
        "networks": {"dokploy-network": {"external": True, "name": network}},
    }
    (folder / "docker-compose.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    compose(folder, "up", "-d")
    client = redis.Redis(port=port)
    try:
        wait_for(client)
        yield sandbox, client
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            compose(folder, "down")  # the volume stays: `down` without -v, as users run it
        for name in (CONTAINER, CONTAINER + adopt.KEPT_SUFFIX):
            with contextlib.suppress(docker.errors.NotFound):
                engine.containers.get(name).remove(force=True)
        sandbox.destroy(check=False)
        sandbox.project.remove()
        with contextlib.suppress(docker.errors.NotFound):
            engine.volumes.get(COMPOSE_VOLUME).remove(force=True)


@pytest.fixture
def seeded(engine, offline_image, tmp_path) -> Iterator[tuple[Sandbox, Path, redis.Redis]]:
    with compose_service(engine, offline_image, tmp_path, TEST_EXTERNAL_NETWORK) as (sandbox, client):
        yield sandbox, tmp_path, client


def write_data(client: redis.Redis) -> tuple[int, dict]:
    """Every type (TTLs too), a stream with a consumer group and a pending entry, a Celery
    queue in db 1; the number of keys, and a snapshot of db 0's."""
    keys = write_every_type(client, "adopt", count=1000)
    client.xgroup_create("adopt:events", "workers", id="$", mkstream=True)
    client.xadd("adopt:events", {"order": "42"})
    client.xreadgroup("workers", "w1", {"adopt:events": ">"}, count=1)  # read, not acknowledged: pending
    broker = redis.Redis(port=client.connection_pool.connection_kwargs["port"], db=1)
    broker.lpush("celery", json.dumps({"task": "orders.ship", "id": "t-1"}))
    return keys + 1, snapshot(client, "adopt")


def running_compose(engine: docker.DockerClient) -> docker.models.containers.Container:
    found = engine.containers.get(CONTAINER)
    assert found.status == "running" and found.labels["com.docker.compose.project"] == PROJECT
    return found


def test_a_mismatch_is_refused_before_the_old_container_stops(seeded, engine) -> None:
    sandbox, _, client = seeded
    write_data(client)
    before = running_compose(engine).id
    result = sandbox.run("adopt", "--stack", "staging", "--yes", check=False)
    assert result.returncode == 1, sandbox.last_output[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("bizosaas-redis adopt: 3 settings of stack staging differ from what runs"), line
    assert line.endswith("nothing was changed"), line
    assert f"pulumi config set redis:volumeName '{COMPOSE_VOLUME}' --stack staging" in result.stdout
    assert "pulumi config set redis:publishAddress '127.0.0.1' --stack staging" in result.stdout
    assert running_compose(engine).id == before, "the compose container was not touched"
    assert not engine.volumes.list(filters={"name": NAMES["volumeName"]}), "no empty volume was made"


def test_a_failure_after_the_stop_puts_the_old_service_back_with_every_key(seeded, engine, monkeypatch) -> None:
    sandbox, _, client = seeded
    _, before = write_data(client)
    taken = time.monotonic()
    monkeypatch.setenv(adopt.FAULT_ENV, "after-stop")
    result = sandbox.run("adopt", "--stack", "staging", "--write-config", "--yes", check=False)
    assert result.returncode == 1, sandbox.last_output[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    assert "adoption failed after the stop (fault injected after the stop" in line and "rolled back" in line, line
    running_compose(engine)
    client = redis.Redis(port=sandbox.port)
    wait_for(client)
    assert differences(before, snapshot(client, "adopt"), (time.monotonic() - taken) * 1000) == []
    assert client.xpending("adopt:events", "workers")["pending"] == 1
    assert redis.Redis(port=sandbox.port, db=1).llen("celery") == 1
    stack_owned = engine.containers.list(all=True, filters={"label": f"{LABEL_STACK}=staging"})
    assert [c.name for c in stack_owned if c.name.startswith(TEST_PREFIX)] == [], "the stack holds no container"
    assert not engine.volumes.list(filters={"name": NAMES["volumeName"]})


def fill(client: redis.Redis, megabytes: int) -> int:
    """`megabytes` of 1 kB strings in db 0 (`bulk:<n>`), as a cache holds them; how many keys."""
    count = megabytes * 1024
    for start in range(0, count, 10_000):
        pipe = client.pipeline(transaction=False)
        for n in range(start, min(start + 10_000, count)):
            pipe.set(f"bulk:{n}", VALUE)
        pipe.execute()
    return count


VALUE = b"v" * 1024


@pytest.mark.parametrize("megabytes", [0, 500], ids=["5 000 keys", "500 MB"])
def test_the_compose_service_is_adopted_with_every_key(seeded, engine, capsys, megabytes: int) -> None:
    sandbox, _, client = seeded
    keys, before = write_data(client)
    taken = time.monotonic()  # TTLs run from the snapshot on
    keys += fill(client, megabytes)
    used = int(client.info("memory")["used_memory"]) / 2**20
    result = sandbox.run("adopt", "--stack", "staging", "--write-config", "--yes", check=False)
    assert result.returncode == 0, sandbox.last_output[-4000:]
    said = result.stdout.strip().splitlines()[-1]
    assert said.startswith(f"adopted {CONTAINER} into stack staging: "), said
    assert "Redis runs without a password today" in result.stderr, "the consumers' change is said"
    # What --write-config wrote is the stack's from now on.
    written = yaml.safe_load(stack_file("staging", sandbox.project.folder).read_text())["config"]
    assert written["redis:volumeName"] == COMPOSE_VOLUME
    sandbox.overrides.update({k.removeprefix("redis:"): v for k, v in written.items()})
    values = sandbox.outputs()
    assert values["volume"] == COMPOSE_VOLUME
    admin = redis.Redis.from_url(values["redis_admin_url"])
    assert differences(before, snapshot(admin, "adopt"), (time.monotonic() - taken) * 1000) == []
    assert admin.xpending("adopt:events", "workers")["pending"] == 1
    assert redis.Redis.from_url(values["redis_admin_url"].rsplit("/", 1)[0] + "/1").llen("celery") == 1
    container = engine.containers.get(CONTAINER)
    assert "com.docker.compose.project" not in container.labels, "the stack's container, not compose's"
    with pytest.raises(docker.errors.NotFound):
        engine.containers.get(CONTAINER + adopt.KEPT_SUFFIX)
    drift = sandbox.run("preview", "--stack", "staging", "--expect-no-changes", check=False)
    assert drift.returncode == 0, sandbox.last_output[-3000:]
    told = SAID.search(said)
    assert told is not None and told["load"] is not None, f"the outage and Redis's load time are said: {said}"
    outage = float(told["outage"])
    size = f"{keys} keys ({used:.0f} MB)"
    FIGURES.extend(
        [
            results.figure(
                f"{size}: no reply, from the stop to the stack's Redis answering",
                [outage],
                bound=MAX_OUTAGE_S,
                bound_from="measured",
                group="outage",
            ),
            results.figure(f"{size}: of it, Redis loading the data (its log)", [float(told["load"])]),
            results.figure(f"{size}: writes paused, from the pause to the first reply", [float(told["paused"])]),
        ]
    )
    with capsys.disabled():
        print(f"\n{said}")
    assert outage < MAX_OUTAGE_S, said


SWARM_NETWORK = f"{TEST_PREFIX}-swarm-dokploy"


@pytest.fixture
def swarm(engine) -> Iterator[str]:
    """This engine as a one-node Swarm with an attachable overlay network, as Dokploy makes
    `dokploy-network`; the engine leaves the Swarm afterwards."""
    if engine.info().get("Swarm", {}).get("LocalNodeState") == "active":
        pytest.fail("the engine is in a Swarm already: the tests do not take over one they did not make")
    engine.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
    try:
        engine.networks.create(SWARM_NETWORK, driver="overlay", attachable=True)
        yield SWARM_NETWORK
    finally:
        for service in engine.services.list(filters={"name": TEST_PREFIX}):
            service.remove()
        time.sleep(2)  # the service's task leaves the network
        for network in engine.networks.list(names=[SWARM_NETWORK]):
            with contextlib.suppress(docker.errors.APIError):
                network.remove()
        engine.swarm.leave(force=True)


@pytest.mark.swarm
def test_adoption_and_up_work_on_a_swarm_overlay_network(engine, offline_image, swarm, tmp_path) -> None:
    """Dokploy's network is an attachable overlay: the compose service on it is adopted, the
    stack's container joins it, and a Swarm service reaches Redis by the alias consumers use."""
    with compose_service(engine, offline_image, tmp_path, swarm) as (sandbox, client):
        keys, _ = write_data(client)
        result = sandbox.run("adopt", "--stack", "staging", "--write-config", "--yes", check=False)
        assert result.returncode == 0, sandbox.last_output[-4000:]
        container = engine.containers.get(CONTAINER)
        network = container.attrs["NetworkSettings"]["Networks"][swarm]
        assert "redis" in network["Aliases"], "compose's service name stays an alias on the overlay"
        # A Swarm service on the overlay asks Redis by that alias, as Dokploy's apps do.
        probe = engine.services.create(
            offline_image,
            ["redis-cli", "-h", "redis", "-p", "6379", "PING"],
            name=f"{TEST_PREFIX}-swarm-probe",
            networks=[swarm],
            restart_policy=docker.types.RestartPolicy(condition="none"),
        )
        deadline = time.monotonic() + 60
        said = ""
        while time.monotonic() < deadline and "NOAUTH" not in said and "PONG" not in said:
            time.sleep(1)
            said = b"".join(probe.logs(stdout=True, stderr=True)).decode(errors="replace")
        assert "NOAUTH" in said or "PONG" in said, f"the Swarm service did not reach Redis by its alias: {said!r}"
        assert keys > 5000
