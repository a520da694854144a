"""Move the primary role away from a node before its container goes (sentinel topology).

A planned replacement of the primary's container (a config or image change) would cost
clients an outage of `downAfterMilliseconds` plus the failover. Asking Sentinel for a
failover first costs them a reconnect: `SENTINEL FAILOVER` promotes an up-to-date replica
and turns the old primary into its replica, so no acknowledged write is dropped. `pulumi
up` runs this as the node container's before-delete hook; the local deployer calls it
before it stops a node.
"""

from __future__ import annotations

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


def current_primary(settings: Settings, admin_password: str) -> tuple[str, int] | None:
    """The primary the first Sentinel that answers reports; None when none answers."""
    for client in _sentinel_clients(settings, admin_password):
        try:
            found = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name(settings))
        except redis.RedisError:
            continue
        finally:
            client.close()
        if found:
            return (str(found[0]), int(found[1]))
    return None


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
    """If `node` is the primary, fail over to a replica and wait until Sentinel reports the
    new primary and it takes writes. True when a handover happened.

    A replica replaced a moment ago is not yet one Sentinel promotes (it aborts with
    no-good-slave), so the failover is asked for once Sentinel sees a good replica, and
    again while the role has not moved."""
    if current_primary(settings, admin_password) != node.address:
        return False
    name = master_name(settings)
    clients = _sentinel_clients(settings, admin_password)
    deadline = time.monotonic() + timeout
    asked_at = 0.0
    try:
        while time.monotonic() < deadline:
            now = current_primary(settings, admin_password)
            if now is not None and now != node.address and _takes_writes(settings, now, admin_password):
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
        for client in clients:
            client.close()
    raise HandoverError(f"{node.container_name} is still the primary after {timeout:.0f} s; not replacing it")


def _takes_writes(settings: Settings, address: tuple[str, int], admin_password: str) -> bool:
    client = redis.Redis(
        host=address[0],
        port=address[1],
        username=settings.admin_username,
        password=admin_password,
        socket_timeout=2,
        socket_connect_timeout=2,
        decode_responses=True,
    )
    try:
        return str(client.execute_command("ROLE")[0]) == "master"
    except redis.RedisError:
        return False
    finally:
        client.close()
