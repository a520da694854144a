"""Move the primary role away from a node before its container goes (sentinel topology).

A planned replacement of the primary's container (a config or image change) would cost
clients an outage of `downAfterMilliseconds` plus the failover. Asking Sentinel for a
failover first costs them a reconnect: `SENTINEL FAILOVER` promotes an up-to-date replica
and turns the old primary into its replica, so no acknowledged write is dropped. `pulumi
up` runs this as the node container's before-delete hook.
"""

from __future__ import annotations

import contextlib
import time

import redis

from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings import Settings
from bizosaas_redis.topology import Placed, master_name, sentinels

# Bounds of one handover: Sentinel's failover takes a few seconds when replicas are in sync.
HANDOVER_TIMEOUT = 60.0
POLL = 0.2
# Seconds one failover attempt may take (writes wait meanwhile) before it is tried again.
ATTEMPT = 5.0
# How recent Sentinel's last INFO of a replica must be for it to count (ms).
FRESH_INFO_MS = 2000


class HandoverError(BizosaasRedisError):
    """The primary could not be moved away; the node was left as it was."""


def client_at(address: tuple[str, int], username: str | None, password: str | None) -> redis.Redis:
    """A client of one node or Sentinel, with short timeouts: a silent host must not hold it."""
    return redis.Redis(
        host=address[0],
        port=address[1],
        username=username,
        password=password,
        socket_timeout=2,
        socket_connect_timeout=2,
        decode_responses=True,
    )


def _sentinel_clients(settings: Settings, admin_password: str) -> list[redis.Redis]:
    return [client_at(s.address, settings.admin_username, admin_password) for s in sentinels(settings)]


def primary_at(
    sentinel_endpoints: list[str], name: str, username: str | None, password: str | None
) -> tuple[str, int] | None:
    """The primary the first Sentinel that answers reports (`host:port` endpoints); None
    when none answers."""
    for endpoint in sentinel_endpoints:
        host, _, port = endpoint.rpartition(":")
        client = client_at((host, int(port)), username, password)
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
    """Sentinel sees a replica it would promote now: up, linked to the primary, its link
    never down since Sentinel's last look, and that look recent."""
    try:
        replicas = client.execute_command("SENTINEL", "REPLICAS", name)
    except redis.RedisError:
        return False
    for replica in replicas:
        fields = dict(zip(replica[::2], replica[1::2], strict=False)) if isinstance(replica, list) else replica
        if (
            fields.get("flags") == "slave"
            and fields.get("master-link-status") == "ok"
            and int(fields.get("master-link-down-time", 1)) == 0
            and int(fields.get("info-refresh", FRESH_INFO_MS + 1)) <= FRESH_INFO_MS
        ):
            return True
    return False


def move_primary_away(
    settings: Settings, node: Placed, admin_password: str, timeout: float = HANDOVER_TIMEOUT
) -> tuple[str, int] | None:
    """If `node` is the primary, hand the role to a replica: the new primary, or None when
    `node` was not the primary.

    As Redis's own FAILOVER command does: once Sentinel sees a replica it would promote,
    writes on the old primary are paused (`CLIENT PAUSE WRITE`: they wait, none is
    refused), Sentinel fails over, the old primary becomes a replica of the new one at once
    and the pause ends; the writes that waited get READONLY and their clients ask Sentinel
    again. Without the pause, clients still connected to the old primary would write there
    until Sentinel demotes it, and those writes would go with the container. An attempt
    Sentinel aborts (a replica replaced a moment ago is not one it promotes) ends the pause
    and is tried again, so writes wait at most one attempt."""
    if current_primary(settings, admin_password) != node.address:
        return None
    name = master_name(settings)
    old = _node_client(settings, node.address, admin_password)
    clients = _sentinel_clients(settings, admin_password)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready = next((c for c in clients if _good_replica(c, name)), None)
            if ready is None:
                time.sleep(POLL)
                continue
            old.execute_command("CLIENT", "PAUSE", int(ATTEMPT * 1000), "WRITE")
            try:
                ready.execute_command("SENTINEL", "FAILOVER", name)
            except redis.RedisError:
                old.execute_command("CLIENT", "UNPAUSE")
                time.sleep(POLL)
                continue  # INPROG: a failover is under way; look again
            until = min(deadline, time.monotonic() + ATTEMPT)
            while time.monotonic() < until:
                now = current_primary(settings, admin_password)
                if now is not None and now != node.address and _takes_writes(settings, now, admin_password):
                    # A replica now, it refuses writes (READONLY) itself: the pause can end,
                    # and must, since a paused replica does not apply the new primary's stream.
                    old.execute_command("REPLICAOF", now[0], now[1])
                    old.execute_command("CLIENT", "UNPAUSE")
                    _wait_for_every_sentinel(settings, now, admin_password, deadline)
                    return now
                time.sleep(POLL)
            old.execute_command("CLIENT", "UNPAUSE")
    finally:
        with contextlib.suppress(redis.RedisError):
            old.execute_command("CLIENT", "UNPAUSE")
        old.close()
        for client in clients:
            client.close()
    raise HandoverError(f"{node.container_name} is still the primary after {timeout:.0f} s; not replacing it")


def _wait_for_every_sentinel(
    settings: Settings, primary: tuple[str, int], admin_password: str, deadline: float
) -> None:
    """Until every Sentinel that answers has switched to the new primary. `GET-MASTER-
    ADDR-BY-NAME` names the promoted replica at once, but `SENTINEL MASTER` (what redis-py,
    Kombu and Celery ask) names the old primary until the failover ends (+switch-master):
    a client sent back to the old node, or the replaced node's start script, would find a
    replica, or a second primary whose writes are then dropped."""
    name = master_name(settings)
    clients = _sentinel_clients(settings, admin_password)
    try:
        while time.monotonic() < deadline:
            if all(_reports(client, name) in (None, primary) for client in clients):
                return
            time.sleep(POLL)
    finally:
        for client in clients:
            client.close()


def _reports(client: redis.Redis, name: str) -> tuple[str, int] | None:
    """The primary one Sentinel reports by both commands; None when it does not answer,
    ("", 0) while the two disagree (a failover under way)."""
    try:
        by_name = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
        state = client.execute_command("SENTINEL", "MASTER", name)
    except redis.RedisError:
        return None
    fields = state if isinstance(state, dict) else dict(zip(state[::2], state[1::2], strict=False))
    first = (str(by_name[0]), int(by_name[1]))
    return first if first == (str(fields.get("ip")), int(fields.get("port", 0))) else ("", 0)


def _node_client(settings: Settings, address: tuple[str, int], admin_password: str) -> redis.Redis:
    return client_at(address, settings.admin_username, admin_password)


def _takes_writes(settings: Settings, address: tuple[str, int], admin_password: str) -> bool:
    client = _node_client(settings, address, admin_password)
    try:
        return str(client.execute_command("ROLE")[0]) == "master"
    except redis.RedisError:
        return False
    finally:
        client.close()
