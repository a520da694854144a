"""Settings Redis applies while it runs, with the real engine: a change of every one of
them (settings.online_directives, and online_acl_settings: the ACL users) on the staging
stack file, under the test's own names, while a writer counts acknowledged writes.

Asserted: the preview shows the change as an update of the settings resource, the server
container is neither replaced nor restarted (same container, same Redis run_id); the
running server reports the new values; no acknowledged write is lost and none paused
longer than PAUSE_BOUND; `preview --expect-no-changes` afterwards; a restart of the
container keeps the new values (online.conf, and redis.conf as CONFIG REWRITE left it,
still readable by Redis alone); `verify` passes. A setting added to the online class
without a case here fails the test."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bizosaas_redis import redis_conf
from bizosaas_redis.settings import load_stack_file, online_acl_settings, online_directives
from bizosaas_redis_ops.bench.lab import wait_for
from bizosaas_redis_ops.deploy.sandbox import Sandbox
from conftest import TEST_PREFIX, sandbox_of
from harness import FAST, Writer

STACK = "staging"
APP_USER = "bizosaas-app"
NAMES = {
    "containerName": f"{TEST_PREFIX}-online",
    "volumeName": f"{TEST_PREFIX}-online-data",
    "networkName": f"{TEST_PREFIX}-online",
    "networkExternal": False,
}
# A new value for each online setting (field -> config key = value), none of them staging's.
CHANGES = {
    # Lowered: the container's memory limit (2 x maxmemory) goes down with it, in place.
    "maxmemory": "maxmemory=1gb",
    "maxmemory_policy": "maxmemoryPolicy=allkeys-lfu",
    "maxmemory_samples": "maxmemorySamples=7",
    "maxclients": "maxclients=777",
    "timeout": "timeout=42",
    "tcp_keepalive": "tcpKeepalive=60",
    "save": 'save=["600 5", "60 20000"]',
    "appendfsync": "appendfsync=always",
    "loglevel": "loglevel=warning",
    # The ACL users (users.acl, ACL SETUSER): a denied command more, another application
    # user (the default one switched off), and the exporter off (its user deleted).
    "denied_commands": f"deniedCommands={json.dumps([*load_stack_file(STACK).denied_commands, 'RANDOMKEY'])}",
    "app_username": f"appUsername={APP_USER}",
    "exporter_enabled": "exporterEnabled=false",
}
# Set on the nodes of the sentinel topology only, or with TLS on: test_sentinel_hosts and
# test_deploy (its TLS stack) change them.
ELSEWHERE = {"min_replicas_to_write", "min_replicas_max_lag", "tls_auth_clients"}
# The longest an acknowledged write may wait while the settings change: CONFIG SET and
# CONFIG REWRITE take microseconds; this leaves room for a loaded CI machine.
PAUSE_BOUND = 0.5


@pytest.fixture
def sandbox(engine, offline_image) -> Iterator[Sandbox]:
    made = sandbox_of(STACK, offline_image, *FAST, names=NAMES)
    made.up()
    yield made
    made.close(engine)
    made.project.remove()


def _admin(sandbox: Sandbox) -> redis.Redis:
    return redis.Redis.from_url(
        sandbox.outputs()["redis_admin_url"], decode_responses=True, retry=Retry(NoBackoff(), 0)
    )


def test_every_online_setting_changes_without_a_restart(sandbox: Sandbox, engine) -> None:
    online = {*online_directives(), *online_acl_settings()}
    assert set(CHANGES) == online - ELSEWHERE, "each online setting needs a case here"
    container = engine.containers.get(NAMES["containerName"])
    admin = _admin(sandbox)
    run_id, before = admin.info("server")["run_id"], admin.dbsize()

    sandbox.overrides.update({k: v for k, _, v in (c.partition("=") for c in CHANGES.values())})
    preview = sandbox.run("preview", "--stack", STACK).stdout
    # Only online.conf's files container is replaced; the settings resource is updated, and
    # the server container in place (its memory limit follows maxmemory); the exporter goes.
    planned = _planned(preview)
    exporter = {name: step for name, step in planned.items() if name.startswith("redis-exporter")}
    assert exporter and set(exporter.values()) == {"delete"}, preview[-3000:]
    assert {name: step for name, step in planned.items() if name not in exporter} == {
        "redis-online-files": "replace",
        "redis-online": "update",
        "redis-container": "update",
    }, preview[-3000:]
    with Writer(sandbox.outputs()["redis_admin_url"], sandbox.port) as writer:
        output = sandbox.up(*CHANGES.values())
    # Lowered before the limit (the container's before-update hook), never under it.
    assert f"{NAMES['containerName']}: maxmemory lowered to 1gb before its memory limit" in output, output[-3000:]
    limit = engine.containers.get(NAMES["containerName"]).attrs["HostConfig"]["Memory"]
    assert limit == sandbox.settings().memory_limit_bytes == 2 * 1024**3

    assert engine.containers.get(NAMES["containerName"]).id == container.id, "the server container was replaced"
    assert admin.info("server")["run_id"] == run_id, "Redis restarted"
    expected = redis_conf.online_config(sandbox.settings())
    assert {key: admin.config_get(key)[key] for key in expected} == expected
    _assert_users(admin)
    assert writer.longest_gap < PAUSE_BOUND, f"a write waited {writer.longest_gap:.2f} s"
    kept = admin.mget([f"{writer.prefix}{n}" for n in writer.acked])
    assert None not in kept, f"{kept.count(None)} of {len(writer.acked)} acknowledged writes lost"
    assert admin.dbsize() == before + len(writer.acked)
    print(f"online change: {len(writer.acked)} acknowledged writes, longest wait {writer.longest_gap * 1000:.0f} ms")

    result = sandbox.run("preview", "--stack", STACK, "--expect-no-changes", check=False)
    assert result.returncode == 0, sandbox.last_output[-3000:]

    container.restart(timeout=30)
    admin = _admin(sandbox)
    wait_for(admin)
    assert admin.info("server")["run_id"] != run_id
    assert {key: admin.config_get(key)[key] for key in expected} == expected, "a restart reverted the settings"
    _assert_users(admin)  # ACL SAVE wrote them to users.acl
    mode = container.exec_run(["stat", "-c", "%a", redis_conf.CONFIG_PATH]).output.decode().strip()
    assert mode == "600", f"redis.conf is {mode} after CONFIG REWRITE"
    sandbox.run("verify", "--stack", STACK)


def _assert_users(admin: redis.Redis) -> None:
    """The users as the ACL changes set them: the new application user with the command
    denied, the default user off, no exporter user."""
    assert "-randomkey" in admin.acl_getuser(APP_USER)["commands"]
    assert "off" in admin.acl_getuser("default")["flags"]
    assert redis_conf.EXPORTER_USER not in admin.acl_users()


def _planned(preview: str) -> dict[str, str]:
    """Resource name -> the step a `preview` plans for it (same-steps are not listed)."""
    steps = re.findall(r"^\s*[-+~]+\s*[\w:/.-]+: \((\w+)\)\n(?:\s+\[id=.*\]\n)?\s+\[urn=.*::([\w-]+)\]", preview, re.M)
    return {name: step for step, name in steps}
