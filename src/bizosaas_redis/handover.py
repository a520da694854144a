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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bizosaas_redis.answers import is_absent, refusal
from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings import Settings
from bizosaas_redis.topology import Placed, master_name, nodes, sentinels

# Bounds of one handover: Sentinel's failover takes a few seconds when replicas are in sync.
HANDOVER_TIMEOUT = 60.0
POLL = 0.05
# Seconds one failover attempt may take (writes wait meanwhile) before it is tried again.
ATTEMPT = 3.0
# Sentinel promotes only replicas whose last INFO is this recent (3 INFO periods of 10 s).
INFO_VALIDITY_MS = 25_000
# Sentinel reads a replica's priority from its INFO, every 10 s: how long to wait for it
# to see the ones set aside (then the failover goes ahead with what it sees).
PRIORITY_SEEN = 15.0
# How long the Sentinel clients ask last may take to see a replica it can promote (its INFO
# of a just-replaced replica is up to 10 s old) before another leads: clients asking the
# leader are sent to the old primary until its failover ends, seconds after the promotion.
LEADER_WAIT = 12.0


class HandoverError(BizosaasRedisError):
    """The primary could not be moved away; the node was left as it was."""


@dataclass(frozen=True)
class Handover:
    """A done handover: the new primary, how long after its promotion every Sentinel named
    it (clients asking a Sentinel that still names the old primary wait until then), and why
    earlier attempts ended without one (each paused writes up to ATTEMPT seconds)."""

    to: tuple[str, int]
    leader: str  # the Sentinel asked to fail over
    switched_after: float
    aborted: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        retried = f" after {len(self.aborted)} aborted attempt(s): {'; '.join(self.aborted)}" if self.aborted else ""
        return (
            f"{self.to[0]}:{self.to[1]} (failover led by Sentinel {self.leader}; every Sentinel named it "
            f"{self.switched_after:.1f} s later){retried}"
        )


def client_at(
    address: tuple[str, int],
    username: str | None,
    password: str | None,
    timeout: float = 2,
    tls: dict[str, Any] | None = None,
) -> redis.Redis:
    """A client of one node or Sentinel, with short timeouts and no retry: a silent host must
    not hold it (redis-py retries a connection 10 times by default: 25 s on a silent host).
    `tls`: redis-py's ssl arguments, for a server that takes TLS only."""
    return redis.Redis(
        host=address[0],
        port=address[1],
        username=username,
        password=password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
        **(tls or {}),
    )


# What to do when a Sentinel refuses the settings' admin credentials or master name.
NOT_AS_DEPLOYED = (
    "the settings' admin user, password or master name (redis:adminUsername, redis:adminPassword, "
    "redis:containerName) are not the running Sentinels' ones: change them on a running sentinel stack only as "
    "docs/explanation/high-availability.md says"
)


def primary_at(
    sentinel_endpoints: list[str], name: str, username: str | None, password: str | None
) -> tuple[str, int] | None:
    """The primary the first Sentinel that answers reports (`host:port` endpoints); None
    only when every Sentinel is absent (nothing listens: none deployed, or a destroy removed
    them). A Sentinel that refuses the credentials or knows no master `name` stops it at
    once; one that times out stops it when no other answered (HandoverError)."""
    unanswered: list[str] = []
    for endpoint in sentinel_endpoints:
        host, _, port = endpoint.rpartition(":")
        client = client_at((host, int(port)), username, password)
        try:
            found = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
        except redis.RedisError as error:
            if is_absent(error):
                continue
            line = refusal(f"Sentinel {endpoint}", error, NOT_AS_DEPLOYED)
            if isinstance(error, redis.AuthenticationError | redis.ResponseError):
                raise HandoverError(line) from None
            unanswered.append(line)
            continue
        finally:
            client.close()
        if not found:
            raise HandoverError(f"Sentinel {endpoint} monitors no master named {name}; {NOT_AS_DEPLOYED}")
        return (str(found[0]), int(found[1]))
    if unanswered:
        raise HandoverError(unanswered[0])
    return None


def current_primary(settings: Settings, admin_password: str) -> tuple[str, int] | None:
    endpoints = [s.endpoint for s in sentinels(settings)]
    return primary_at(endpoints, master_name(settings), settings.admin_username, admin_password)


def wait_for_the_others(
    settings: Settings, node: Placed, admin_password: str, timeout: float = HANDOVER_TIMEOUT
) -> bool:
    """Before `node` goes: until every other node is the primary or a replica streaming from
    it (False after `timeout`). `pulumi up` replaces the nodes one after the other, each
    healthy before the next, but healthy is not linked: a replica answers PING seconds
    before it has synced, and replacing the next node then would leave the primary with
    fewer replicas than `minReplicasToWrite` (writes refused, NOREPLICAS)."""
    others = {n.address for n in nodes(settings) if n.index != node.index}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        primary = current_primary(settings, admin_password)
        if primary is None:
            return True  # every Sentinel is absent (a destroy removes them first): nothing to keep
        if others - {primary} <= _streaming(settings, primary, admin_password):
            return True
        time.sleep(4 * POLL)
    return False


def _streaming(settings: Settings, primary: tuple[str, int], admin_password: str) -> set[tuple[str, int]]:
    """The replicas a primary streams to (`state=online`)."""
    with _connected_at(settings, [primary], admin_password) as [client]:
        try:
            info = client.info("replication")
        except redis.RedisError:
            return set()
    return {
        (str(v["ip"]), int(v["port"]))
        for k, v in info.items()
        if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online"
    }


def move_primary_away(
    settings: Settings,
    node: Placed,
    admin_password: str,
    prefer: Sequence[Placed] = (),
    timeout: float = HANDOVER_TIMEOUT,
) -> Handover | None:
    """If `node` is the primary, hand the role to a replica: the handover, or None when
    `node` was not the primary.

    `prefer`: the replicas to hand over to when one of them can take it. `pulumi up` passes
    the nodes it has already replaced: a role handed to a node still to be replaced would
    move a second time. The others get `replica-priority 0` (Sentinel never promotes
    them) until the handover is done.

    As Redis's own FAILOVER command does: writes on the old primary are paused (`CLIENT
    PAUSE WRITE`: they wait, none is refused), the replicas to promote catch up with its
    last write, Sentinel fails over, the old primary and the other replicas follow the new
    one at once and the pause ends; the writes that waited get READONLY and their clients
    ask Sentinel again. Without the pause, clients still connected to the old primary would
    write there until Sentinel demotes it, and those writes would go with the container.
    The failover is asked of the Sentinel clients ask last: the others learn the new
    primary as soon as it is promoted, the one leading the failover only once every replica
    follows it. An attempt Sentinel aborts ends the pause and is tried again."""
    if current_primary(settings, admin_password) != node.address:
        return None
    others = [n for n in nodes(settings) if n.index != node.index]
    wanted = [n for n in others if n.index in {p.index for p in prefer}] or others
    started = time.monotonic()
    deadline = started + timeout
    aborted: list[str] = []
    last_first = list(reversed(sentinels(settings)))
    with (
        _connected(settings, [node, *others], admin_password) as [old, *replicas],
        _connected(settings, last_first, admin_password) as watchers,
        _set_aside(settings, [n for n in others if n not in wanted], admin_password, watchers),
    ):
        by_node = dict(zip(others, replicas, strict=True))
        while time.monotonic() < deadline:
            # The Sentinel clients ask last leads; another only once it was given LEADER_WAIT.
            eligible = watchers if time.monotonic() - started > LEADER_WAIT else watchers[:1]
            leader = next((w for w in eligible if _candidates(w, master_name(settings), wanted)), None)
            if leader is None:
                time.sleep(POLL)
                continue
            promoted = _fail_over(settings, old, leader, by_node, wanted)
            if not isinstance(promoted, Placed):
                if promoted is not None:
                    aborted.append(promoted)
                time.sleep(POLL)
                continue
            _follow(promoted, by_node)
            promoted_at = time.monotonic()
            _wait_for_every_sentinel(settings, promoted.address, admin_password, deadline)
            led = last_first[watchers.index(leader)].endpoint
            return Handover(promoted.address, led, time.monotonic() - promoted_at, aborted)
    why = f" ({'; '.join(aborted[-3:])})" if aborted else ""
    raise HandoverError(f"{node.container_name} is still the primary after {timeout:.0f} s{why}; not replacing it")


def _follow(promoted: Placed, replicas: dict[Placed, redis.Redis]) -> None:
    """The other replicas follow the promoted node now: Sentinel would reconfigure them a
    second or more later."""
    for other, client in replicas.items():
        if other != promoted:
            with contextlib.suppress(redis.RedisError):
                client.execute_command("REPLICAOF", *promoted.address)


def _fail_over(
    settings: Settings, old: redis.Redis, leader: redis.Redis, replicas: dict[Placed, redis.Redis], wanted: list[Placed]
) -> Placed | str | None:
    """One attempt, writes paused on `old`: the promoted node, or why the attempt ended
    without one (the pause ended); None: no attempt (the old primary is a replica already,
    an earlier attempt's failover ended after it gave up, and no node is the primary yet)."""
    if _role(old) == "slave":
        return _promoted(replicas)
    old.execute_command("CLIENT", "PAUSE", int(ATTEMPT * 1000), "WRITE")
    started = time.monotonic()
    try:
        last_write = int(old.info("replication")["master_repl_offset"])
        until = started + ATTEMPT
        while not _caught_up([replicas[n] for n in wanted], last_write):
            if time.monotonic() > until:
                return f"replicas not caught up with offset {last_write} in {ATTEMPT:.0f} s"
            time.sleep(POLL)
        try:
            leader.execute_command("SENTINEL", "FAILOVER", master_name(settings))
        except redis.RedisError as refused:
            return f"SENTINEL FAILOVER refused: {refused}"  # INPROG: a failover is under way
        while time.monotonic() < until:
            promoted = _promoted(replicas)
            if promoted is not None:
                # A replica now, the old primary refuses writes (READONLY) itself: the pause
                # can end, and must, since a paused replica does not apply the new stream.
                old.execute_command("REPLICAOF", *promoted.address)
                return promoted
            time.sleep(POLL)
        return f"no replica promoted {time.monotonic() - started:.1f} s after the pause began"
    finally:
        with contextlib.suppress(redis.RedisError):
            old.execute_command("CLIENT", "UNPAUSE")


def _promoted(replicas: dict[Placed, redis.Redis]) -> Placed | None:
    return next((n for n, client in replicas.items() if _role(client) == "master"), None)


def _caught_up(replicas: list[redis.Redis], last_write: int) -> bool:
    """Every linked one of `replicas` has applied the primary's stream up to `last_write`
    (Sentinel may promote any of them), and one at least is linked."""
    offsets = [o for o in (_offset(r) for r in replicas) if o >= 0]
    return bool(offsets) and min(offsets) >= last_write


def _replicas_seen(watcher: redis.Redis, name: str) -> list[dict[str, Any]]:
    """The replicas one Sentinel knows (`SENTINEL REPLICAS`); none when it does not answer."""
    try:
        return [sentinel_fields(r) for r in watcher.execute_command("SENTINEL", "REPLICAS", name)]
    except redis.RedisError:
        return []


def _candidates(client: redis.Redis, name: str, wanted: list[Placed]) -> bool:
    """This Sentinel would promote one of `wanted` now: up, linked to the primary with no
    break since its last look (recent enough for Sentinel's own choice), priority not 0."""
    replicas = _replicas_seen(client, name)
    addresses = {n.address for n in wanted}
    return any(
        (r.get("ip"), int(r.get("port", 0))) in addresses
        and r.get("flags") == "slave"
        and r.get("master-link-status") == "ok"
        and int(r.get("master-link-down-time", 1)) == 0
        and int(r.get("info-refresh", INFO_VALIDITY_MS + 1)) <= INFO_VALIDITY_MS
        and int(r.get("slave-priority", 0)) != 0
        for r in replicas
    )


@contextlib.contextmanager
def _set_aside(
    settings: Settings, replicas: list[Placed], password: str, watchers: list[redis.Redis]
) -> Iterator[None]:
    """`replica-priority 0` on `replicas` (Sentinel never promotes them) until the block
    ends, then their own priority again; waits (bounded) for the Sentinels to see it."""
    with _connected(settings, replicas, password) as clients:
        kept: list[tuple[redis.Redis, str]] = []
        try:
            for client in clients:
                with contextlib.suppress(redis.RedisError):
                    kept.append((client, str(client.config_get("replica-priority")["replica-priority"])))
                    client.config_set("replica-priority", 0)
            until = time.monotonic() + PRIORITY_SEEN
            while kept and time.monotonic() < until and not _priority_seen(settings, replicas, watchers):
                time.sleep(0.5)
            yield
        finally:
            _restore_priorities(kept)


def _restore_priorities(kept: list[tuple[redis.Redis, str]]) -> None:
    """Each replica set aside gets its own priority back; one that keeps 0 would never be
    promoted again, so a failure says which node and how to fix it (HandoverError)."""
    failed = []
    for client, priority in kept:
        try:
            client.config_set("replica-priority", priority)
        except redis.RedisError as error:
            where = "node {host}:{port}".format(**client.get_connection_kwargs())
            fix = f"its replica-priority stays 0: CONFIG SET replica-priority {priority}"
            failed.append(refusal(where, error, fix))
    if failed:
        raise HandoverError("; ".join(failed))


def _priority_seen(settings: Settings, replicas: list[Placed], watchers: list[redis.Redis]) -> bool:
    addresses = {n.address for n in replicas}
    for watcher in watchers:
        seen = _replicas_seen(watcher, master_name(settings))
        if any(
            (r.get("ip"), int(r.get("port", 0))) in addresses and int(r.get("slave-priority", 1)) != 0 for r in seen
        ):
            return False
    return True


def _wait_for_every_sentinel(
    settings: Settings, primary: tuple[str, int], admin_password: str, deadline: float
) -> None:
    """Until every Sentinel that answers has switched to the new primary. `GET-MASTER-
    ADDR-BY-NAME` names the promoted replica at once, but `SENTINEL MASTER` (what redis-py,
    Kombu and Celery ask) names the old primary until the failover ends (+switch-master):
    a client sent back to the old node, or the replaced node's start script, would find a
    replica, or a second primary whose writes are then dropped."""
    name = master_name(settings)
    with _connected(settings, sentinels(settings), admin_password) as clients:
        while time.monotonic() < deadline:
            if all(_reports(client, name) in (None, primary) for client in clients):
                return
            time.sleep(POLL)


def _reports(client: redis.Redis, name: str) -> tuple[str, int] | None:
    """The primary one Sentinel reports by both commands; None when it does not answer,
    ("", 0) while the two disagree (a failover under way)."""
    try:
        by_name = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)
        fields = sentinel_fields(client.execute_command("SENTINEL", "MASTER", name))
    except redis.RedisError:
        return None
    first = (str(by_name[0]), int(by_name[1]))
    return first if first == (str(fields.get("ip")), int(fields.get("port", 0))) else ("", 0)


def sentinel_fields(entry: Any) -> dict[str, Any]:
    """A Sentinel reply entry (a flat list under RESP2, a dict under RESP3) as a dict."""
    return entry if isinstance(entry, dict) else dict(zip(entry[::2], entry[1::2], strict=False))


def _connected(
    settings: Settings, places: Sequence[Placed], password: str
) -> contextlib.AbstractContextManager[list[redis.Redis]]:
    """Admin clients of `places` (nodes or Sentinels), closed when the block ends."""
    return _connected_at(settings, [p.address for p in places], password)


@contextlib.contextmanager
def _connected_at(
    settings: Settings, addresses: Sequence[tuple[str, int]], password: str
) -> Iterator[list[redis.Redis]]:
    clients = [client_at(address, settings.admin_username, password) for address in addresses]
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


def _offset(replica: redis.Redis) -> int:
    """How much of the primary's stream a replica has applied; -1 when it is not a
    linked replica (it cannot be promoted anyway)."""
    try:
        info = replica.info("replication")
    except redis.RedisError:
        return -1
    return int(info.get("slave_repl_offset", -1)) if info.get("master_link_status") == "up" else -1


def _role(client: redis.Redis) -> str:
    try:
        return str(client.execute_command("ROLE")[0])
    except redis.RedisError:
        return ""
