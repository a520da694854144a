"""The versions users run: Redis 7.0 (Debian 12), Redis 8.0 and Valkey 8.1 (Debian 13).

The rendered configuration, the ACL users and the smoke suite run on each server; a
Redis 8.0 backup (RDB format 12, which Redis 7.0's checker refuses) is verified by the
image's own checker and restored; a switch to a server that cannot read the data on the
volume is refused before anything changes.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from bizosaas_redis import redis_conf
from bizosaas_redis.settings import available_stacks, load_stack_file
from bizosaas_redis_ops.check import scenarios, smoke
from bizosaas_redis_ops.deploy.sandbox import Sandbox
from bizosaas_redis_ops.images import offline_image
from conftest import ROOT, TEST_PREFIX, cli, free_port, server_conf
from dataset import differences, snapshot, write_every_type
from harness import Deployment, Writer

SERVERS = ["redis-7.0", "redis-8.0", "valkey-8.1"]
APP, ADMIN = "app-Pw-0123456789", "admin-Pw-0123456789"
OVERRIDDEN = {"port", "bind", "dir"}  # the test's own port and folder
# What each reports as redis_version (Valkey reports the Redis version it is compatible with).
VERSIONS = {"redis-7.0": "7.0.", "redis-8.0": "8.0.", "valkey-8.1": "7.2."}


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("stack", available_stacks(ROOT))
def test_the_rendered_config_means_the_same_on_every_server(start_redis, server, stack):
    settings = load_stack_file(stack, ROOT)
    conf = server_conf(settings, APP if settings.auth_enabled else None, ADMIN)
    process = start_redis(conf, server_name=server)
    admin = process.client(username="admin", password=ADMIN)
    assert admin.info("server")["redis_version"].startswith(VERSIONS[server])
    for key, value in redis_conf.expected_config(settings).items():
        if key not in OVERRIDDEN:
            assert admin.config_get(key) == {key: value}, f"{server}: {key}"


@pytest.mark.parametrize("server", SERVERS)
def test_acl_users_behave_the_same_on_every_server(start_redis, server):
    process = start_redis(server_conf(load_stack_file("production", ROOT), APP, ADMIN), server_name=server)
    app = process.client(password=APP)
    assert app.set("k", "v") and app.eval("return 1", 0) == 1
    for command in ("FLUSHALL", "FLUSHDB", "KEYS *", "CONFIG GET maxmemory", "SHUTDOWN", "ACL LIST"):
        with pytest.raises(redis.exceptions.NoPermissionError):
            app.execute_command(*command.split())
    health = process.client(username="healthcheck", password=redis_conf.HEALTHCHECK_PASSWORD)
    assert health.ping()
    with pytest.raises(redis.exceptions.NoPermissionError):
        health.get("k")


@pytest.mark.parametrize("server", SERVERS)
def test_the_smoke_suite_passes_on_every_server(start_redis, server):
    conf = server_conf(load_stack_file("staging", ROOT), APP, ADMIN)
    process = start_redis(conf, server_name=server)
    env = {**os.environ, "REDIS_URL": f"redis://default:{APP}@127.0.0.1:{process.port}/0"}
    result = cli("smoke", env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == f"{len(scenarios.SCENARIOS)} passed, 0 failed"


def _flavour(server: str) -> str:
    return f"flavour={offline_image.SERVERS[server].flavour}"


@pytest.fixture(scope="module")
def images(docker_client) -> dict[str, str]:
    return {name: offline_image.build(docker_client, server=name) for name in SERVERS}


@dataclass
class Versioned:
    """The dev stack file under this module's own names, deployed on one server or another."""

    sandbox: Sandbox
    images: dict[str, str]

    def up(self, server: str) -> None:
        self.sandbox.up(f"image={self.images[server]}", _flavour(server))

    def attempt(self, server: str) -> subprocess.CompletedProcess:
        return self.sandbox.attempt(f"image={self.images[server]}", _flavour(server))

    def admin(self) -> redis.Redis:
        return redis.Redis.from_url(self.sandbox.outputs()["redis_admin_url"])

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return cli(*args, env={**os.environ, **self.sandbox.env()})


@pytest.fixture
def versioned(engine, images) -> Iterator[Versioned]:
    names = {
        "containerName": f"{TEST_PREFIX}-versions",
        "volumeName": f"{TEST_PREFIX}-versions-data",
        "networkName": f"{TEST_PREFIX}-versions-net",
    }
    settings = {"appendonly": True, "healthcheckInterval": 1, "healthcheckTimeout": 1, "hostPort": free_port()}
    made = Versioned(Sandbox("dev", {**names, **settings}), images)
    yield made
    made.sandbox.close(engine)
    made.sandbox.project.remove()


def test_an_upgrade_keeps_the_data_and_a_redis_8_backup_is_verified_and_restored(versioned, engine, tmp_path):
    versioned.up("redis-7.0")
    versioned.admin().set("from-7.0", "kept")
    versioned.up("redis-8.0")  # 7.0 -> 8.0: reads the older format
    admin = versioned.admin()
    assert admin.get("from-7.0") == b"kept" and admin.info("server")["redis_version"].startswith("8.0.")
    admin.set("from-8.0", "kept")
    made = Path(versioned.cli("backup", "--stack", "dev", "--dest", str(tmp_path / "b")).stdout.split()[0])
    assert made.read_bytes()[:9] == b"REDIS0012"  # Redis 7.0's checker would call this corrupt
    admin.set("after-backup", "goes aside")
    result = versioned.cli("restore", "--stack", "dev", str(made))
    assert "restored" in result.stdout
    admin = versioned.admin()
    assert admin.get("from-8.0") == b"kept" and admin.get("after-backup") is None


def test_a_switch_to_a_server_that_cannot_read_the_data_is_refused(versioned, engine):
    versioned.up("redis-8.0")
    admin = versioned.admin()
    admin.set("precious", "1")
    admin.bgrewriteaof()  # the AOF base and snapshot are now format 12
    admin.save()
    name = versioned.sandbox.settings().name
    before = engine.containers.get(name).id
    refused = versioned.attempt("valkey-8.1")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"bizosaas-redis up: redis:image = {versioned.images['valkey-8.1']} reads RDB format up to 11, but the "
        "data on the volume is format 12 (written by a newer server): it would not load it. Keep a server that "
        "reads it, or copy the keys logically into a fresh deployment (SCAN and rewrite each key); nothing was "
        "changed"
    )
    assert engine.containers.get(name).id == before
    assert versioned.admin().get("precious") == b"1"


@pytest.mark.parametrize("server", SERVERS)
def test_switching_aof_keeps_every_key_and_write_on_every_server(engine, images, server):
    names = {
        "containerName": f"{TEST_PREFIX}-aof-{server}",
        "volumeName": f"{TEST_PREFIX}-aof-{server}-data",
        "networkName": f"{TEST_PREFIX}-aof-{server}-net",
    }
    deployment = Deployment("dev", names, images[server], ["appendonly=false", _flavour(server)])
    try:
        deployment.up()
        for label, change in (("off -> on", "appendonly=true"), ("on -> off", "appendonly=false")):
            keys = write_every_type(deployment.admin(), f"aof:{label}", count=50)
            before = snapshot(deployment.admin(), f"aof:{label}")
            with Writer(smoke.with_db(deployment.outputs()["redis_admin_url"], 0), deployment.port) as writer:
                output = deployment.up(change)
            assert "redis-container replaced" in output
            assert differences(before, snapshot(deployment.admin(), f"aof:{label}"), 60_000) == [], (server, label)
            client = deployment.admin()
            assert all(client.exists(f"w:{n}") for n in writer.acked), (server, label)
            assert len(before) == keys and len(writer.acked) > 20
    finally:
        deployment.close(engine)


@pytest.mark.parametrize("server", ["redis-8.0", "valkey-8.1"])
def test_verify_passes_on_a_deployment_of_each_newer_server(versioned, server):
    versioned.up(server)
    result = cli("verify", "--stack", "dev", env={**os.environ, **versioned.sandbox.env()}, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].endswith("passed, 0 failed")


def test_a_valkey_backup_is_verified_by_valkeys_checker_and_restored(versioned, tmp_path):
    versioned.up("valkey-8.1")
    admin = versioned.admin()
    admin.set("from-valkey", "kept")
    made = Path(versioned.cli("backup", "--stack", "dev", "--dest", str(tmp_path / "b")).stdout.split()[0])
    assert made.read_bytes()[:9] == b"REDIS0011"
    admin.set("after-backup", "goes aside")
    assert "restored" in versioned.cli("restore", "--stack", "dev", str(made)).stdout
    admin = versioned.admin()
    assert admin.get("from-valkey") == b"kept" and admin.get("after-backup") is None
