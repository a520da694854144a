"""Replication and Redis Sentinel configuration of the sentinel topology: pure functions.

Two users exist on every Redis node beside the service's own: `replication`, which a
replica authenticates as to its primary (PSYNC, REPLCONF, PING and nothing else), and
`sentinel`, which Sentinels use to watch the nodes and reconfigure them on failover (the
command set Redis's Sentinel documentation lists). Both have passwords of their own,
generated and kept in the stack's state like the others.

Redis 7 takes these two upstream passwords only in clear (`masterauth`, `sentinel
auth-pass`, `sentinel sentinel-pass`): they are the only clear passwords the service
writes, each in a mode-0600 file on its node's own volume, beside the data that file
guards. The application, admin and exporter passwords stay hashes everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

from bizosaas_redis import redis_conf
from bizosaas_redis.redis_conf import HEALTHCHECK_PASSWORD, HEALTHCHECK_USER, password_hash
from bizosaas_redis.settings import Settings, online_sentinel_options
from bizosaas_redis.topology import Placed, master_name, nodes, sentinel_id

REPLICATION_USER = "replication"
SENTINEL_USER = "sentinel"
REPLICATION_RULES = "-@all +psync +replconf +ping"
# What Sentinel runs on a monitored node (Redis docs, "Redis Sentinel", ACL section); the
# channel is where Sentinels find each other.
SENTINEL_RULES = (
    "&__sentinel__:hello -@all +auth +client|getname +client|id +client|setname +command +hello +ping +role "
    "+client|kill +config|rewrite +multi +exec +info +publish +script|kill +slaveof +replicaof +subscribe"
)
# What applications ask a Sentinel: where the primary and replicas are, and change events.
SENTINEL_CLIENT_RULES = (
    "-@all +auth +hello +ping +role +client|setname +client|getname +subscribe +psubscribe +unsubscribe "
    "+punsubscribe +sentinel|get-master-addr-by-name +sentinel|master +sentinel|masters +sentinel|replicas "
    "+sentinel|slaves +sentinel|sentinels"
)
# What redis_exporter asks a Sentinel (INFO, then per master its Sentinels, replicas and
# whether they can still authorize a failover: CKQUORUM); nothing that changes its state.
SENTINEL_EXPORTER_RULES = (
    "-@all +auth +hello +ping +info +client|setname +sentinel|masters +sentinel|master +sentinel|sentinels "
    "+sentinel|replicas +sentinel|slaves +sentinel|ckquorum"
)
# The public healthcheck user also asks where the primary is: start scripts do, without a secret.
SENTINEL_HEALTHCHECK_RULES = "-@all +ping +sentinel|get-master-addr-by-name"
SENTINEL_CONFIG_NAME = "sentinel.conf"


def render_node_config(settings: Settings, node: Placed) -> str:
    """A node's redis.conf without users: the service's, on the node's address and port,
    with replication."""
    return redis_conf.render_config(settings, node) + "\n".join(replication_lines(settings, node)) + "\n"


@dataclass(frozen=True)
class Accepted:
    """The passwords a topology user accepts: the one its clients (the nodes' masterauth,
    the Sentinels' auth-pass and sentinel-pass) use, and during a rotation the next one
    (`rotate start`: accepted before any client uses it) or the previous one (`rotate
    switch`: accepted until every client has moved)."""

    current: str
    other: str | None = None

    def hashes(self) -> str:
        return redis_conf.password_secrets(self.current, self.other)


def render_node(settings: Settings, node: Placed, replication_password: str) -> str:
    """The whole redis.conf of a node: with the one clear upstream password."""
    return render_node_config(settings, node) + f"masterauth {replication_password}\n"


def render_node_users(
    settings: Settings,
    passwords: tuple[str | None, str, str | None, Accepted, Accepted],
    previous: redis_conf.Previous = redis_conf.NO_PREVIOUS,
) -> str:
    """A node's users.acl. `passwords`: app, admin, exporter, and the replication and
    Sentinel passwords accepted; `previous`: a rotation's, still accepted."""
    app, admin, exporter, replication, sentinel = passwords
    return redis_conf.render_users(settings, app, admin, exporter, previous, more=node_users(replication, sentinel))


def replication_lines(settings: Settings, node: Placed) -> list[str]:
    """A node's replication settings (no secret). Nodes 1..N start as replicas of node 0;
    after a failover, Sentinel rewrites this and the start script asks Sentinel."""
    lines = [
        "",
        "# Replication (topology sentinel): announce the host's address, as clients and Sentinels reach it.",
        f"masteruser {REPLICATION_USER}",
        f"replica-announce-ip {node.host.address}",
        f"replica-announce-port {node.port}",
        "replica-read-only yes",
        "replica-serve-stale-data yes",
        # A primary cut off from its replicas stops taking writes after the lag bound: set
        # while Redis runs, min-replicas-to-write and min-replicas-max-lag are in online.conf.
    ]
    if node.index > 0:
        first = nodes(settings)[0]
        lines.append(f"replicaof {first.host.address} {first.port}")
    return lines


def node_users(replication: Accepted, sentinel: Accepted) -> tuple[str, ...]:
    """The topology's users on every node."""
    return (
        f"user {REPLICATION_USER} reset on {replication.hashes()} {REPLICATION_RULES}",
        f"user {SENTINEL_USER} reset on {sentinel.hashes()} {SENTINEL_RULES}",
    )


def sentinel_online_config(settings: Settings) -> dict[str, str]:
    """Option -> value of the settings Sentinel applies while it runs (`SENTINEL SET`), as
    `SENTINEL MASTER` reports them."""
    return {option: str(getattr(settings, field)) for field, option in online_sentinel_options().items()}


def render_sentinel_online(settings: Settings) -> str:
    """A Sentinel's online.conf: the settings applied without a restart (components/online.py)."""
    name = master_name(settings)
    lines = [
        f"# online.conf for stack {settings.stack}: settings Sentinel applies while it runs.",
        "# Generated by bizosaas_redis.sentinel_conf and included by sentinel.conf; a change is",
        "# written here and set on the running Sentinels with SENTINEL SET in the same `up`.",
        *(f"sentinel {option} {name} {value}" for option, value in sentinel_online_config(settings).items()),
    ]
    return "\n".join(lines) + "\n"


def render_sentinel_config(settings: Settings, sentinel: Placed) -> str:
    """sentinel.conf without secrets (exported for previews), without the settings applied
    while Sentinel runs: it includes online.conf, after the monitor line they refer to. The
    monitor line names node 0; the start script points it at the primary the other
    Sentinels report, if any."""
    primary = nodes(settings)[0]
    name = master_name(settings)
    lines = [
        f"# sentinel.conf for stack {settings.stack}: Sentinel {sentinel.index} of {settings.sentinels}.",
        "# Generated by bizosaas_redis.sentinel_conf; Sentinel rewrites it as it learns the topology.",
        f"port {sentinel.port}",
        f"bind {' '.join(sentinel.listen_addresses)}",
        "protected-mode no",
        'logfile ""',
        "daemonize no",
        f"dir {redis_conf.DATA_DIR}",
        f"sentinel myid {sentinel_id(settings, sentinel)}",
        f"sentinel announce-ip {sentinel.host.address}",
        f"sentinel announce-port {sentinel.port}",
        "sentinel resolve-hostnames no",
        f"sentinel monitor {name} {primary.host.address} {primary.port} {settings.sentinel_quorum}",
        f"sentinel parallel-syncs {name} 1",
        f"sentinel auth-user {name} {SENTINEL_USER}",
        f"sentinel sentinel-user {SENTINEL_USER}",
        "# The settings applied without a restart (see online.conf), and the ACL users (hashes).",
        f"include {redis_conf.ONLINE_CONFIG_PATH}",
        f"aclfile {redis_conf.USERS_PATH}",
    ]
    return "\n".join(lines) + "\n"


def render_sentinel_secrets(settings: Settings, sentinel_password: str) -> str:
    """The clear password a Sentinel authenticates upstream with (to the nodes, to its peers)."""
    name = master_name(settings)
    return f"sentinel auth-pass {name} {sentinel_password}\nsentinel sentinel-pass {sentinel_password}\n"


def render_sentinel_users(
    settings: Settings,
    app_password: str | None,
    admin_password: str,
    sentinel_password: Accepted,
    exporter_password: str | None = None,
    previous: redis_conf.Previous = redis_conf.NO_PREVIOUS,
) -> str:
    """A Sentinel's users.acl (hashes): the exporter's user with the exporter; a rotation's
    previous passwords still accepted."""
    app_secret = redis_conf.password_secrets(app_password, previous.app) if app_password else "nopass"
    lines = [
        f"user {settings.app_username} reset on {app_secret} {SENTINEL_CLIENT_RULES}",
        f"user {settings.admin_username} reset on {redis_conf.password_secrets(admin_password, previous.admin)} +@all",
        f"user {SENTINEL_USER} reset on {sentinel_password.hashes()} +@all",
        f"user {HEALTHCHECK_USER} reset on #{password_hash(HEALTHCHECK_PASSWORD)} {SENTINEL_HEALTHCHECK_RULES}",
    ]
    if exporter_password is not None:
        lines.append(
            f"user {redis_conf.EXPORTER_USER} reset on "
            f"{redis_conf.password_secrets(exporter_password, previous.exporter)} {SENTINEL_EXPORTER_RULES}"
        )
    if settings.app_username != "default":
        lines.append("user default reset off")
    return "\n".join(lines) + "\n"
