"""Checks on the running Redis before a change replaces it: what the change would do to its
data. `bizosaas-redis up` runs them (`before_update`) before `pulumi up` touches anything:
the provider replaces a container delete-before-replace, so a new one that cannot start,
or starts on data it cannot read, would leave no Redis at all."""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Mapping
from typing import Any

import docker
import redis

from bizosaas_redis import handover
from bizosaas_redis.answers import is_absent, refusal
from bizosaas_redis.connection import credentials, host_tls, instance_names
from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.sentinel_conf import REPLICATION_USER, SENTINEL_USER
from bizosaas_redis.settings import NAMESPACE, PREVIOUS_KEYS, Settings, instances
from bizosaas_redis.topology import master_name, sentinels


class PreflightError(BizosaasRedisError):
    """The change would make the running data unusable; nothing was changed."""


def _mb(size: int) -> str:
    return f"{size / 1024**2:.1f}mb"


def used_memory(admin_url: str, tls: Mapping[str, Any] | None = None) -> int | None:
    """Bytes the running server holds; None only when nothing listens there (nothing to
    protect). A server that refuses the admin user, times out or answers oddly stops the
    update (PreflightError): the guard cannot see the data it guards. `tls`: redis-py's TLS
    arguments for the running server (connection.host_tls)."""
    client = redis.Redis.from_url(admin_url, socket_timeout=5, socket_connect_timeout=5, **(tls or {}))
    where = "{host}:{port}".format(**client.get_connection_kwargs())
    try:
        return int(client.info("memory")["used_memory"])
    except (redis.RedisError, OSError, KeyError, ValueError) as error:
        if is_absent(error):
            return None
        hint = (
            "the maxmemory check needs the admin user as deployed (redis:adminUsername, redis:adminPassword); "
            "nothing was changed"
        )
        raise PreflightError(refusal(f"the running Redis at {where}", error, hint)) from None
    finally:
        client.close()


def maxmemory_change(new: Settings, used: int | None) -> str | None:
    """None when the new maxmemory holds the data. Below it: on a policy that evicts any key
    (a cache) a note of how much will be evicted; otherwise PreflightError, since every
    write would be refused and keys without a TTL could never be evicted."""
    if used is None or new.maxmemory >= used:
        return None
    over = used - new.maxmemory
    if new.maxmemory_policy.startswith("allkeys-"):
        return (
            f"redis:maxmemory = {_mb(new.maxmemory)} is below the {_mb(used)} in use: "
            f"{new.maxmemory_policy} will evict about {_mb(over)} of keys on the next writes"
        )
    effect = (
        "writes would be refused"
        if new.maxmemory_policy == "noeviction"
        else "only keys with a TTL can be evicted, then writes would be refused"
    )
    raise PreflightError(
        f"redis:maxmemory = {_mb(new.maxmemory)} is below the {_mb(used)} in use under "
        f"maxmemory-policy {new.maxmemory_policy}: {effect}; raise maxmemory, or delete "
        f"{_mb(over)} first; nothing was changed"
    )


# The newest RDB format each server line reads (Redis 7.4 and 8 write 12; Valkey reads 11).
READABLE_RDB: dict[str, dict[tuple[int, int], int]] = {
    "redis": {(6, 0): 9, (6, 2): 9, (7, 0): 10, (7, 2): 11, (7, 4): 12, (8, 0): 12, (8, 2): 12},
    "valkey": {(7, 2): 11, (8, 0): 11, (8, 1): 11},
}
_SERVER_IMAGE = re.compile(r"(redis|valkey)[^:/@]*:v?(\d+)\.(\d+)")
# The data files a start would load: the snapshot, and the AOF's RDB-format base.
_HEADERS = 'cd /data && for f in dump.rdb appendonlydir/*.base.rdb; do [ -f "$f" ] && head -c 9 "$f" && echo; done'


def readable_rdb_version(image: str) -> int | None:
    """The newest RDB format the image's server reads, when its tag says which server it is."""
    found = _SERVER_IMAGE.search(image.rsplit("/", 1)[-1] if "/" in image else image)
    if found is None:
        return None
    flavour, line = found.group(1), (int(found.group(2)), int(found.group(3)))
    known = READABLE_RDB[flavour]
    if line in known:
        return known[line]
    return max(known.values()) if line > max(known) else None


def rdb_versions(headers: str) -> list[int]:
    """RDB format versions from file headers (`REDIS0012`)."""
    return [int(line[5:9]) for line in headers.split() if line.startswith("REDIS") and line[5:9].isdigit()]


def data_format(container: Any, new_image: str) -> None:
    """Refuse to start a server on data files it cannot read: it would start empty, or not at all."""
    readable = readable_rdb_version(new_image)
    if readable is None or container is None or container.status != "running":
        return
    code, output = container.exec_run(["sh", "-c", _HEADERS])
    versions = rdb_versions(output.decode(errors="replace")) if code == 0 else []
    if versions and max(versions) > readable:
        raise PreflightError(
            f"redis:image = {new_image} reads RDB format up to {readable}, but the data on the volume is format "
            f"{max(versions)} (written by a newer server): it would not load it. Keep a server that reads it, "
            "or copy the keys logically into a fresh deployment (SCAN and rewrite each key); nothing was changed"
        )


def port_free(new: Settings, held: int | None) -> None:
    """The host port the new container publishes is free, or held by the container it replaces."""
    if new.topology != "standalone" or new.host_port == held:
        return
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((new.publish_address, new.host_port))
        except OSError as exc:
            raise PreflightError(
                f"redis:hostPort = {new.host_port}: {new.publish_address}:{new.host_port} is taken ({exc.strerror}); "
                "choose a free port or stop what holds it; nothing was changed"
            ) from None


def network_exists(new: Settings, client: docker.DockerClient) -> None:
    """An external network (Dokploy's) is looked up, never created: it must be there."""
    if new.topology != "standalone" or not new.network_external:
        return
    if not [n for n in client.networks.list(names=[new.network_name]) if n.name == new.network_name]:
        raise PreflightError(
            f"redis:networkName = {new.network_name}: the network is external (redis:networkExternal: true) and "
            f"does not exist on the Docker host; create it (docker network create {new.network_name}) or set "
            "redis:networkExternal to false; nothing was changed"
        )


# Why a credential or name of a running sentinel stack cannot change in `up`: the nodes'
# handover asks the running Sentinels with the new ones, and a replaced replica links with them.
NOT_IN_PLACE = (
    "a running sentinel stack's credentials and names do not change in place (its handover and replication "
    "use the new ones against the running servers): keep the running value; nothing was changed"
)


def sentinel_as_deployed(new: Settings, running: dict[str, Any], given: Mapping[str, str]) -> None:
    """Topology sentinel: the running Sentinels know the new settings' master name at the
    same endpoints, and the running servers accept every credential the new settings use,
    else PreflightError before anything changes. `given`: the secret values the stack's
    config sets (keys without the namespace); a password not given is the deployed one."""
    if new.topology != "sentinel" or running.get("topology") != "sentinel":
        return
    names = instance_names(new.role)
    wanted = (master_name(new), sorted(s.endpoint for s in sentinels(new)))
    deployed = (str(running["master_name"]), sorted(str(e) for e in running["sentinels"]))
    if wanted != deployed:
        raise PreflightError(
            f"the settings name master {wanted[0]} with Sentinels {', '.join(wanted[1])}; the running stack "
            f"{deployed[0]} with {', '.join(deployed[1])} (redis:containerName, redis:sentinelPort or the hosts "
            f"changed): {NOT_IN_PLACE}"
        )
    # The handover's admin password: a rotation's previous one, which the running servers hold.
    admin = (
        given.get(names.config_key(PREVIOUS_KEYS["adminPassword"]))
        or given.get(names.config_key("adminPassword"))
        or credentials(str(running["redis_admin_url"]))[1]
    )
    primary = f"{running['host']}:{running['port']}"
    checks = [("redis:adminUsername / redis:adminPassword", [primary, *deployed[1]], new.admin_username, admin)]
    for key, user, where in (
        ("replicationPassword", REPLICATION_USER, [primary]),
        ("sentinelPassword", SENTINEL_USER, deployed[1]),
    ):
        if given.get(names.config_key(key)):
            checks.append((f"{NAMESPACE}:{names.config_key(key)}", where, user, given[names.config_key(key)]))
    for setting, places, user, password in checks:
        _accepted(setting, places, user, password)


def _accepted(setting: str, places: list[str], user: str, password: str | None) -> None:
    """Each of `places` (`host:port` of nodes or Sentinels) that is there accepts `user` with `password`."""
    for place in places:
        host, _, port = place.rpartition(":")
        client = handover.client_at((host, int(port)), user, password)
        try:
            client.ping()
        except redis.RedisError as error:
            # NOPERM comes after a successful AUTH: the user's rules forbid PING, not the password.
            if is_absent(error) or isinstance(error, redis.exceptions.NoPermissionError):
                continue
            if isinstance(error, redis.AuthenticationError):
                raise PreflightError(f"{setting}: {place} refuses the new value; {NOT_IN_PLACE}") from None
            raise PreflightError(
                refusal(f"{host}:{port}", error, f"cannot check {setting}; nothing was changed")
            ) from None
        finally:
            client.close()


def before_update(
    new: Settings,
    running: dict[str, dict[str, Any]],
    client: docker.DockerClient | None,
    given: Mapping[str, str] | None = None,
) -> list[str]:
    """Notes on what the update does to the running data (maxmemory below what an instance
    holds, on a policy that evicts), or PreflightError when it would make the data unusable
    (maxmemory on a policy that refuses writes, an RDB format the new image cannot read, a
    port that is taken, an external network that is missing, a sentinel stack's credential
    or name that changed). `running`: the outputs of each instance deployed now (cache,
    durable), empty before the first deployment; `given`: the secret values the stack's
    config sets."""
    notes = []
    if client is not None:
        network_exists(new, client)
    for settings in instances(new):
        found = running.get("durable" if settings.role == "durable" else "cache")
        if found is None:
            port_free(settings, None)
            continue
        sentinel_as_deployed(settings, found, given or {})
        note = maxmemory_change(
            settings, used_memory(str(found["redis_admin_url"]), host_tls(found.get("settings", {})))
        )
        notes += [note] if note else []
        port_free(settings, int(found["port"]))
        if client is not None and settings.topology == "standalone":
            container = None
            with contextlib.suppress(docker.errors.NotFound):
                container = client.containers.get(str(found["container_name"]))
            data_format(container, settings.image)
    return notes
