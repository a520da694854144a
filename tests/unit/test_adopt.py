"""Adoption's pure parts: what `docker inspect` of a compose container says, how it
compares with a stack's settings, and how the data before and after are compared."""

from __future__ import annotations

from typing import Any

import pytest

from bizosaas_redis.settings import load_stack_file
from bizosaas_redis_ops.deploy import adopt

ID = "0123456789abcdef0123"


def compose_attrs(**changes: Any) -> dict[str, Any]:
    """A container as docker compose makes it for project `bizosaas`, service `redis`."""
    attrs: dict[str, Any] = {
        "Id": ID,
        "Name": "/bizosaas-redis-staging",
        "Config": {
            "Image": "redis:7-alpine",
            "Labels": {
                "com.docker.compose.project": "bizosaas",
                "com.docker.compose.service": "redis",
                "com.docker.compose.project.working_dir": "/srv/bizosaas",
            },
        },
        "State": {"Status": "running"},
        "HostConfig": {"RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0}},
        "Mounts": [{"Type": "volume", "Name": "bizosaas_redis_data", "Destination": "/data"}],
        "NetworkSettings": {
            "Networks": {"dokploy-network": {"Aliases": ["bizosaas-redis-staging", "redis", ID[:12]]}},
            "Ports": {"6379/tcp": [{"HostIp": "0.0.0.0", "HostPort": "6380"}, {"HostIp": "::", "HostPort": "6380"}]},
        },
    }
    attrs.update(changes)
    return attrs


def server(**changes: Any) -> adopt.Server:
    config = {
        "maxmemory": "2147483648",
        "maxmemory-policy": "allkeys-lru",
        "save": "900 1 300 10 60 10000",
        "appendonly": "no",
        "appendfsync": "everysec",
        "maxclients": "10000",
        "databases": "16",
        "dir": "/data",
        "dbfilename": "dump.rdb",
    }
    values: dict[str, Any] = {
        "version": "7.2.4",
        "config": config,
        "used_memory": 10_000_000,
        "keys": {0: 5001, 1: 3},
        "password": False,
    }
    values.update(changes)
    return adopt.Server(**values)


def test_a_compose_container_is_read_as_it_runs() -> None:
    found = adopt.found_from(compose_attrs())
    assert found.name == "bizosaas-redis-staging" and found.volume == "bizosaas_redis_data" and found.bind is None
    assert found.networks == {"dokploy-network": ("redis",)}, "its own name and id are not aliases a consumer set"
    assert found.published == (("0.0.0.0", 6380), ("::", 6380))
    assert found.reachable_at == ("127.0.0.1", 6380)
    assert found.restart == "unless-stopped"
    assert found.compose["project"] == "bizosaas" and found.compose["service"] == "redis"


def test_the_compose_volume_name_is_what_the_stack_must_take() -> None:
    """Compose names the volume `<project>_redis_data`; the staging stack says `redis_data`:
    the stack would create an empty volume. The fixes name the volume and the alias."""
    found_here = adopt.compare(adopt.found_from(compose_attrs()), server(), load_stack_file("staging"))
    rows, fixes = found_here.rows, found_here.fixes
    assert found_here.refusals == []
    assert fixes == {"volumeName": "bizosaas_redis_data", "networkAliases": '["redis", "redis-staging"]'}
    volume = next(r for r in rows if r.setting == "volumeName")
    assert (volume.stack, volume.running) == ("redis_data", "bizosaas_redis_data")
    assert adopt.config_line("staging", "volumeName", fixes["volumeName"]) == (
        "pulumi config set redis:volumeName 'bizosaas_redis_data' --stack staging"
    )


def test_the_compose_project_that_made_it_is_shown_and_what_becomes_of_it() -> None:
    found_here = adopt.compare(adopt.found_from(compose_attrs()), server(), load_stack_file("staging"))
    shown = {r.setting: (r.running, r.verdict) for r in found_here.rows if r.setting.startswith("compose ")}
    assert shown["compose project"] == ("bizosaas", adopt.COMPOSE_AFTER)
    assert shown["compose service"] == ("redis", adopt.COMPOSE_AFTER)
    assert shown["compose working_dir"][0] == "/srv/bizosaas"
    assert "compose" not in " ".join(found_here.fixes), "compose's labels are shown, never a setting to change"
    plain = compose_attrs()
    plain["Config"]["Labels"] = {}
    rows = adopt.compare(adopt.found_from(plain), server(), load_stack_file("staging")).rows
    assert not [r for r in rows if r.setting.startswith("compose ")], "a container compose did not make"


def test_port_network_and_databases_that_differ_are_fixes() -> None:
    attrs = compose_attrs()
    attrs["NetworkSettings"] = {
        "Networks": {"bizosaas_default": {"Aliases": ["redis"]}},
        "Ports": {"6379/tcp": [{"HostIp": "127.0.0.1", "HostPort": "6379"}]},
    }
    settings = load_stack_file("staging")
    fixes = adopt.compare(adopt.found_from(attrs), server(keys={0: 1, 20: 5}), settings).fixes
    assert fixes["hostPort"] == "6379" and fixes["publishAddress"] == "127.0.0.1"
    assert fixes["networkName"] == "bizosaas_default" and fixes["networkExternal"] == "true"
    assert fixes["databases"] == "21", "keys in db 20 need 21 databases"


@pytest.mark.parametrize(
    ("mount", "said"),
    [
        ({"Type": "bind", "Source": "/srv/redis", "Destination": "/data"}, "a bind mount of /srv/redis"),
        (None, "the container's own layer"),
    ],
)
def test_data_outside_a_named_volume_is_refused(mount: dict | None, said: str) -> None:
    attrs = compose_attrs(Mounts=[mount] if mount else [])
    refusals = adopt.compare(adopt.found_from(attrs), server(), load_stack_file("staging")).refusals
    assert len(refusals) == 1 and said in refusals[0]


def test_data_written_elsewhere_than_data_is_refused() -> None:
    config = {**server().config, "dir": "/var/lib/redis"}
    found_here = adopt.compare(adopt.found_from(compose_attrs()), server(config=config), load_stack_file("staging"))
    assert found_here.refusals == [
        "Redis in bizosaas-redis-staging writes its data to /var/lib/redis/dump.rdb, not to /data/dump.rdb"
    ]


def test_turning_authentication_on_is_said_before_anything_starts() -> None:
    settings = load_stack_file("staging")
    said = adopt.auth_change(server(), settings, "staging")
    assert said is not None and "every client that connects without a password is refused" in said
    assert adopt.auth_change(server(password=True), settings, "staging") is None


def fingerprint(samples: dict[int, dict[bytes, tuple[str, int]]], keys: int = 3) -> adopt.Fingerprint:
    return adopt.Fingerprint({0: keys}, samples)


def test_sampled_keys_must_keep_their_values_and_ttls() -> None:
    before = fingerprint({0: {b"a": ("d1", -1), b"b": ("d2", 60_000), b"c": ("d3", 500)}})
    same = {0: {b"a": ("d1", -1), b"b": ("d2", 55_000)}}  # c's TTL ran out during a 2 s outage
    assert adopt.differences(before, same, elapsed_ms=2000) == []
    changed = {0: {b"a": ("other", -1), b"b": ("d2", -1), b"c": ("d3", 400)}}
    assert adopt.differences(before, changed, elapsed_ms=100) == [
        "db 0 key b'a': another value",
        "db 0 key b'b': TTL 60000 ms became -1 ms",
    ]
    assert adopt.differences(before, {0: {}}, elapsed_ms=100)[0] == "db 0 key b'a': gone (TTL was -1 ms)"


def test_every_key_saved_must_be_loaded_or_expired_on_load() -> None:
    before = fingerprint({}, keys=5004)
    assert adopt.loaded_all(before, {"rdb_last_load_keys_loaded": 5001, "rdb_last_load_keys_expired": 3}) is None
    short = adopt.loaded_all(before, {"rdb_last_load_keys_loaded": 0, "rdb_last_load_keys_expired": 0})
    assert short is not None and "loaded 0 keys" in short and "held 5004" in short


def test_the_load_time_is_read_from_redis_log() -> None:
    log = (
        "1:M 06 Dec 2026 03:10:01.100 * Loading RDB produced by version 7.0.15\n"
        "1:M 06 Dec 2026 03:10:01.612 * Done loading RDB, keys loaded: 5005, keys expired: 0.\n"
        "1:M 06 Dec 2026 03:10:01.612 * DB loaded from disk: 0.512 seconds\n"
    )
    assert adopt.load_seconds(log) == 0.512
    assert adopt.load_seconds("* DB loaded from append only file: 1.250 seconds") == 1.25
    assert adopt.load_seconds("* Ready to accept connections tcp") is None, "an empty volume says nothing"
