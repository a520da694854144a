"""Replication and Redis Sentinel configuration for the sentinel topology: pure functions.

Work in progress (issue 14): rendered text only; nothing in the program uses it yet.

Two users exist on every Redis node beside the service's own: `replication`, which a
replica authenticates as to its primary (PSYNC, REPLCONF, PING and nothing else), and
`sentinel`, which Sentinel uses to watch the nodes and reconfigure them on failover (the
command set Redis's Sentinel documentation lists). A replica must send its password to
the primary, so `masterauth` holds it in clear: the file is mode 0600 on the data volume,
and the user can read no key.
"""

from __future__ import annotations

from .redis_conf import password_hash

SENTINEL_PORT = 26379
REPLICATION_USER = "replication"
SENTINEL_USER = "sentinel"
REPLICATION_RULES = "-@all +psync +replconf +ping"
# What Sentinel runs on a monitored node (Redis docs, "Redis Sentinel", ACL section).
SENTINEL_RULES = (
    # Sentinels find each other through this channel on the monitored nodes.
    "&__sentinel__:hello -@all +auth +client|getname +client|id +client|setname +command +hello +ping +role "
    "+client|kill +config|rewrite +multi +exec +info +publish +script|kill +slaveof +replicaof +subscribe"
)


def node_users(replication_password: str, sentinel_password: str) -> list[str]:
    """The ACL lines every node of the topology adds to its users."""
    return [
        f"user {REPLICATION_USER} reset on #{password_hash(replication_password)} {REPLICATION_RULES}",
        f"user {SENTINEL_USER} reset on #{password_hash(sentinel_password)} {SENTINEL_RULES}",
    ]


def replication_lines(
    announce_ip: str,
    announce_port: int,
    replication_password: str,
    min_replicas_to_write: int,
    min_replicas_max_lag: int,
    primary: tuple[str, int] | None = None,
) -> list[str]:
    """What a node needs to replicate: on a replica (`primary` given) whom it follows; on
    every node how it authenticates upstream after a failover and what it announces."""
    lines = [
        f"masteruser {REPLICATION_USER}",
        f"masterauth {replication_password}",
        # Sentinel and clients must reach the node at its host's address, not the container's.
        f"replica-announce-ip {announce_ip}",
        f"replica-announce-port {announce_port}",
        "replica-read-only yes",
        "replica-serve-stale-data yes",
        # A primary cut off from its replicas stops taking writes after the lag bound.
        f"min-replicas-to-write {min_replicas_to_write}",
        f"min-replicas-max-lag {min_replicas_max_lag}",
    ]
    if primary is not None:
        lines.insert(0, f"replicaof {primary[0]} {primary[1]}")
    return lines


def render_sentinel(
    master_name: str,
    primary: tuple[str, int],
    quorum: int,
    down_after_ms: int,
    failover_timeout_ms: int,
    sentinel_password: str,
    announce: tuple[str, int],
    client_password: str,
) -> str:
    """sentinel.conf. Sentinel rewrites this file as it learns the topology: it must be
    writable (on the data volume)."""
    host, port = primary
    lines = [
        f"port {SENTINEL_PORT}",
        "bind * -::*",
        "protected-mode no",
        'logfile ""',
        "daemonize no",
        f"sentinel announce-ip {announce[0]}",
        f"sentinel announce-port {announce[1]}",
        "sentinel resolve-hostnames no",
        f"sentinel monitor {master_name} {host} {port} {quorum}",
        f"sentinel down-after-milliseconds {master_name} {down_after_ms}",
        f"sentinel failover-timeout {master_name} {failover_timeout_ms}",
        f"sentinel parallel-syncs {master_name} 1",
        f"sentinel auth-user {master_name} {SENTINEL_USER}",
        f"sentinel auth-pass {master_name} {sentinel_password}",
        # Clients and the other Sentinels authenticate to this one.
        f"requirepass {client_password}",
        f"sentinel sentinel-pass {client_password}",
    ]
    return "\n".join(lines) + "\n"
