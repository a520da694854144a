"""Move the primary role away from a node before its container goes (sentinel topology).

A planned replacement of the primary's container (a config or image change) would cost
clients an outage of `downAfterMilliseconds` plus the failover. Asking Sentinel for a
failover first costs them a reconnect: `SENTINEL FAILOVER` promotes an up-to-date replica
and turns the old primary into its replica, so no acknowledged write is dropped. `pulumi
up` runs this as the node container's before-delete hook; the local deployer calls it
before it stops a node.
"""

from __future__ import annotations

import contextlib
import time

import redis

from .errors import BizosaasRedisError
from .settings import Settings
from .topology import Placed, master_name, sentinels

# Bounds of one handover: Sentinel's failover takes a few seconds when replicas are in sync.
HANDOVER_TIMEOUT = 60.0
POLL = 0.2
# Seconds before asking again when a failover did not move the role (Sentinel aborted it).
RETRY_AFTER = 5.0


class HandoverError(BizosaasRedisError):
    """The primary could not be moved away; the node was left as it was."""


def _sentinel_clients(settings: Settings, admin_password: str) -> list[redis.Redis]:
    return [
        redis.Redis(
            host=s.host.address,
            port=s.port,
            username=settings.admin_username,
            password=admin_password,
            socket_timeout=2,
            socket_connect_timeout=2,
            decode_responses=True,
        )
        for s in sentinels(settings)
    ]


def primary_at(
    sentinel_endpoints: list[str], name: str, username: str | None, password: str | None
) -> tuple[str, int] | None:
    """The primary the first Sentinel that answers reports (`host:port` endpoints); None
    when none answers."""
    for endpoint in sentinel_endpoints:
        host, _, port = endpoint.rpartition(":")
        client = redis.Redis(
            host=host,
            port=int(port),
            username=username,
            password=password,
            socket_timeout=2,
            socket_connect_timeout=2,
            decode_responses=True,
        )
        try:
            found = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
        except redis.RedisError:
            continue
        finally:
            client.close()
        if found:
            return (str(found[0]), int(found[1]))
    return None


def current_primary(settings: Settings, admin_password: str) -> tuple[str, int] | None:
    endpoints = [s.endpoint for s in sentinels(settings)]
    return primary_at(endpoints, master_name(settings), settings.admin_username, admin_password)


def _good_replica(client: redis.Redis, name: str) -> bool:
    """Sentinel sees a replica it would promote: up, linked to the primary."""
    try:
        replicas = client.execute_command("SENTINEL", "REPLICAS", name)
    except redis.RedisError:
        return False
    for replica in replicas:
        fields = dict(zip(replica[::2], replica[1::2], strict=False)) if isinstance(replica, list) else replica
        if fields.get("flags") == "slave" and fields.get("master-link-status") == "ok":
            return True
    return False


def move_primary_away(settings: Settings, node: Placed, admin_password: str, timeout: float = HANDOVER_TIMEOUT) -> bool:
    """If `node` is the primary, hand the role to a replica; True when it did.

    Sentinel's failover promotes a replica but leaves the old primary a primary until it
    reconfigures it, and clients still connected to it keep writing there: writes that
    the replacement would then drop (measured: 321 of 647 in one run). So, as Redis's own
    FAILOVER command does: writes on the old primary are paused first (`CLIENT PAUSE
    WRITE`: they wait, nothing is refused), Sentinel fails over once a replica has
    everything, the old primary is made a replica of the new one at once, and the pause
    ends: the writes that waited get READONLY and their clients ask Sentinel again.

    A replica replaced a moment ago is not yet one Sentinel promotes (it aborts with
    no-good-slave), so the failover is asked for once Sentinel sees a good replica, and
    again while the role has not moved."""
    if current_primary(settings, admin_password) != node.address:
        return False
    name = master_name(settings)
    old = _node_client(settings, node.address, admin_password)
    clients = _sentinel_clients(settings, admin_password)
    deadline = time.monotonic() + timeout
    asked_at = 0.0
    try:
        old.execute_command("CLIENT", "PAUSE", int(timeout * 1000), "WRITE")
        while time.monotonic() < deadline:
            now = current_primary(settings, admin_password)
            if now is not None and now != node.address and _takes_writes(settings, now, admin_password):
                old.execute_command("REPLICAOF", now[0], now[1])
                return True
            if now == node.address and time.monotonic() - asked_at > RETRY_AFTER:
                for client in clients:
                    if _good_replica(client, name):
                        try:
                            client.execute_command("SENTINEL", "FAILOVER", name)
                            asked_at = time.monotonic()
                            break
                        except redis.RedisError:
                            continue  # INPROG, or this Sentinel is cut off: ask another
            time.sleep(POLL)
    finally:
        with contextlib.suppress(redis.RedisError):
            old.execute_command("CLIENT", "UNPAUSE")
        old.close()
        for client in clients:
            client.close()
    raise HandoverError(f"{node.container_name} is still the primary after {timeout:.0f} s; not replacing it")


def _node_client(settings: Settings, address: tuple[str, int], admin_password: str) -> redis.Redis:
    return redis.Redis(
        host=address[0],
        port=address[1],
        username=settings.admin_username,
        password=admin_password,
        socket_timeout=2,
        socket_connect_timeout=2,
        decode_responses=True,
    )


def _takes_writes(settings: Settings, address: tuple[str, int], admin_password: str) -> bool:
    client = _node_client(settings, address, admin_password)
    try:
        return str(client.execute_command("ROLE")[0]) == "master"
    except redis.RedisError:
        return False
    finally:
        client.close()
