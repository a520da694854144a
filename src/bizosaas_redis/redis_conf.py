"""Render redis.conf from Settings: pure functions, deterministic output.

Three files. `render_config`, redis.conf, holds no secret, so it is exported for
reviewers to read in previews; it includes `render_online`'s online.conf (the settings
Redis applies while it runs) and names `render_users`' users.acl as its `aclfile`: the ACL
users with SHA-256 password hashes (Redis' `#<hash>` form), so no clear password is ever
written into the container. Users in an aclfile are set while Redis runs (`ACL SETUSER`,
then `ACL SAVE` rewrites the file; components/online.py): a new password or a denied
command needs no restart, and Redis's own rewrites (CONFIG REWRITE, Sentinel's) never
copy users into redis.conf.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bizosaas_redis.constants import REDIS_GID, REDIS_UID
from bizosaas_redis.settings import Settings, online_directives

if TYPE_CHECKING:  # topology imports nothing of this module; only its type is needed
    from bizosaas_redis.topology import Placed

CONTAINER_PORT = 6379
DATA_DIR = "/data"
CONFIG_PATH = f"{DATA_DIR}/redis.conf"
# The settings Redis applies while it runs (settings.online_directives), in a file of their
# own that redis.conf includes: a change of them rewrites this file and is set with CONFIG
# SET (components/online.py), and redis.conf, whose every byte replaces the container, stays.
ONLINE_CONFIG_PATH = f"{DATA_DIR}/online.conf"
# The ACL users (hashes), written with online.conf and set with ACL SETUSER.
USERS_PATH = f"{DATA_DIR}/users.acl"
# Redis 7's multi-part AOF: a folder with a manifest, an RDB-format base and increments.
AOF_DIR = "appendonlydir"
AOF_BASE = "appendonly.aof.1.base.rdb"
AOF_MANIFEST = "appendonly.aof.manifest"
# The manifest of an AOF that is only its base, as a seeded or restored one starts.
AOF_BASE_ONLY_MANIFEST = f"file {AOF_BASE} seq 1 type b"
TLS_DIR = "/tls"
# The certificate files redis.conf names. `CONFIG SET` of the same paths makes Redis read
# them again: renewed certificates load without a restart (components/online.py).
TLS_FILES = {
    "tls-cert-file": f"{TLS_DIR}/tls.crt",
    "tls-key-file": f"{TLS_DIR}/tls.key",
    "tls-ca-cert-file": f"{TLS_DIR}/ca.crt",
}
SOCKET_DIR = "/run/redis"
SOCKET_PATH = f"{SOCKET_DIR}/redis.sock"
# Owner and group may connect: consumers share the socket by running with the group.
SOCKET_PERM = "770"


def socket_volume_opts() -> dict[str, str]:
    """The socket's volume: in memory, owned by Redis's user and group (a socket needs no
    disk; consumers that mount the volume connect when they run with the group)."""
    return {"type": "tmpfs", "device": "tmpfs", "o": f"uid={REDIS_UID},gid={REDIS_GID},mode=0{SOCKET_PERM},size=1m"}


HEALTHCHECK_USER = "healthcheck"
# The healthcheck user may only PING; its password guards nothing, so it is fixed and
# public, which keeps every real password out of the container's healthcheck command.
HEALTHCHECK_PASSWORD = "healthcheck"
EXPORTER_USER = "exporter"
# What redis_exporter reads, and nothing else: no key, no write, no admin command.
EXPORTER_RULES = (
    "-@all +@connection +info +ping +config|get +client|list +client|info +slowlog +latency "
    "+dbsize +memory|stats +cluster|info +select"
)


def password_hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def shutdown_on_sigterm(settings: Settings) -> str:
    """With AOF off, a stop writes a snapshot even with RDB rules off: the next start loads
    it, and a switch to AOF starts from it. With AOF on, the stop flushes and fsyncs the
    AOF, which holds everything; a snapshot on top would only lengthen every stop (13.9 s
    at 1.5 GB), so there is none, and a switch of AOF off loads the AOF once at start."""
    if settings.appendonly:
        return "nosave"
    return "save" if settings.save_on_shutdown else "default"


def listen(node: Placed | None) -> tuple[str, int]:
    """`bind` and `port`: every interface of the container on Redis's port, or a node of
    the sentinel topology on its host's network: the host's address and its own port."""
    if node is None:
        return "* -::*", CONTAINER_PORT
    return " ".join(node.listen_addresses), node.port


def expected_config(settings: Settings, node: Placed | None = None) -> dict[str, str]:
    """Directive -> value as `CONFIG GET` reports it; tests and `verify` compare to this."""
    tls = settings.tls_enabled
    bind, port = listen(node)
    expected = {
        "bind": bind,
        "protected-mode": "yes" if settings.auth_enabled else "no",
        "port": "0" if tls else str(port),
        "dir": DATA_DIR,
        "maxmemory": str(settings.maxmemory),
        "maxmemory-policy": settings.maxmemory_policy,
        "maxmemory-samples": str(settings.maxmemory_samples),
        "maxclients": str(settings.maxclients),
        "timeout": str(settings.timeout),
        "tcp-keepalive": str(settings.tcp_keepalive),
        "databases": str(settings.databases),
        "save": " ".join(str(rule) for rule in settings.save),
        "appendonly": "yes" if settings.appendonly else "no",
        "appendfsync": settings.appendfsync,
        "shutdown-on-sigterm": shutdown_on_sigterm(settings),
        "loglevel": settings.loglevel,
    }
    if tls:
        expected["tls-port"] = str(CONTAINER_PORT)
        expected["tls-auth-clients"] = settings.tls_auth_clients
    if settings.unix_socket:
        expected["unixsocket"] = SOCKET_PATH
        expected["unixsocketperm"] = SOCKET_PERM
    if node is not None:
        expected["min-replicas-to-write"] = str(settings.min_replicas_to_write)
        expected["min-replicas-max-lag"] = str(settings.min_replicas_max_lag)
        expected["replica-announce-ip"] = node.host.address
        expected["replica-announce-port"] = str(node.port)
    return expected


EMPTY = '""'


def online_config(settings: Settings, node: Placed | None = None) -> dict[str, str]:
    """Directive -> value of the settings Redis applies while it runs, as `CONFIG GET`
    reports them (and as `CONFIG SET` and the config file take them); `node`: one node of
    the sentinel topology, which also has the replication ones."""
    expected = expected_config(settings, node)
    return {directive: expected[directive] for directive in online_directives().values() if directive in expected}


def render_online(settings: Settings, node: Placed | None = None) -> str:
    """online.conf: the settings applied without a restart. Same settings, same bytes."""
    lines = [
        f"# online.conf for stack {settings.stack}: settings Redis applies while it runs.",
        "# Generated by bizosaas_redis.redis_conf and included by redis.conf; a change is",
        "# written here and set on the running server with CONFIG SET in the same `up`.",
        # An empty value (`save` with RDB off) is written as the config file needs it.
        *(f"{directive} {value or EMPTY}" for directive, value in online_config(settings, node).items()),
    ]
    return "\n".join(lines) + "\n"


def render_config(settings: Settings, node: Placed | None = None) -> str:
    """redis.conf without users (`node`: one node of the sentinel topology), without the
    settings applied while Redis runs: it includes online.conf for them. Same settings,
    same bytes."""
    online = set(online_directives().values())
    lines = [
        f"# redis.conf for stack {settings.stack} ({settings.environment}).",
        "# Generated from Pulumi.<stack>.yaml by bizosaas_redis.redis_conf;",
        "# edit the stack settings, not this file.",
        "",
        *_network_lines(settings, node),
        "",
        *_memory_lines(settings),
        "",
        *_persistence_lines(settings),
        "",
        "# Operations: logs go to stdout for Docker's rotating json-file driver.",
        'logfile ""',
        f"loglevel {settings.loglevel}",
        "daemonize no",
        "slowlog-log-slower-than 10000",
        "slowlog-max-len 128",
        "latency-monitor-threshold 100",
        "enable-debug-command no",
        "enable-module-command no",
        "enable-protected-configs no",
        "",
        "# The settings applied without a restart (see online.conf), and the ACL users (hashes).",
        f"include {ONLINE_CONFIG_PATH}",
        f"aclfile {USERS_PATH}",
    ]
    return "\n".join(line for line in lines if line.split(" ", 1)[0] not in online) + "\n"


def _network_lines(settings: Settings, node: Placed | None) -> list[str]:
    bind, port = listen(node)
    lines = [
        "# Network. Redis listens on every interface inside the container; what the host",
        "# exposes is decided by the published port's address. Protected mode refuses",
        "# remote clients only while the default user has no password, which is the dev",
        "# stack's deliberate choice, so it is off there and on everywhere else.",
        f"bind {bind}",
        f"protected-mode {'yes' if settings.auth_enabled else 'no'}",
    ]
    if settings.tls_enabled:
        lines += [
            "port 0",
            f"tls-port {CONTAINER_PORT}",
            *(f"{directive} {path}" for directive, path in TLS_FILES.items()),
            f"tls-auth-clients {settings.tls_auth_clients}",
        ]
    else:
        lines.append(f"port {port}")
    if settings.unix_socket:
        lines += [f"unixsocket {SOCKET_PATH}", f"unixsocketperm {SOCKET_PERM}"]
    return [
        *lines,
        f"timeout {settings.timeout}",
        f"tcp-keepalive {settings.tcp_keepalive}",
        f"maxclients {settings.maxclients}",
        f"databases {settings.databases}",
    ]


def _memory_lines(settings: Settings) -> list[str]:
    return [
        (
            "# Memory: the durable instance (queues, streams, sessions): refuse writes when full, never evict"
            if settings.role == "durable"
            else "# Memory: a shared cache, so evict rather than refuse writes"
        ),
        "# (maxmemory and maxmemory-policy, which Redis applies while it runs, are in online.conf).",
        f"maxmemory-policy {settings.maxmemory_policy}",
        f"maxmemory-samples {settings.maxmemory_samples}",
        "lazyfree-lazy-eviction yes",
        "lazyfree-lazy-expire yes",
    ]


def _persistence_lines(settings: Settings) -> list[str]:
    return [
        "# Persistence",
        f"dir {DATA_DIR}",
        "dbfilename dump.rdb",
        *([f"save {rule}" for rule in settings.save] or ['save ""']),
        "stop-writes-on-bgsave-error yes",
        "rdbcompression yes",
        "rdbchecksum yes",
        f"appendonly {'yes' if settings.appendonly else 'no'}",
        f'appenddirname "{AOF_DIR}"',
        f"appendfsync {settings.appendfsync}",
        "aof-use-rdb-preamble yes",
        # What a stop (docker stop, a replacement) writes: see shutdown_on_sigterm.
        f"shutdown-on-sigterm {shutdown_on_sigterm(settings)}",
    ]


def acl_rules(settings: Settings) -> str:
    """ACL rules of the application user, after its password."""
    denied = " ".join(f"-{command.lower()}" for command in settings.denied_commands)
    return " ".join(part for part in ("~* &* +@all", denied) if part)


@dataclass(frozen=True)
class Previous:
    """A rotation's previous passwords, each still accepted beside its user's current one
    (an ACL user may hold several): the application's, the admin's, the exporter's."""

    app: str | None = None
    admin: str | None = None
    exporter: str | None = None


# No rotation under way.
NO_PREVIOUS = Previous()


def password_secrets(current: str, previous: str | None) -> str:
    """An ACL user's password hashes: the current one, and the previous one during a rotation."""
    hashes = [current, *([previous] if previous and previous != current else [])]
    return " ".join(f"#{password_hash(p)}" for p in hashes)


def render_users(
    settings: Settings,
    app_password: str | None,
    admin_password: str,
    exporter_password: str | None = None,
    previous: Previous = Previous(),
    more: tuple[str, ...] = (),
) -> str:
    """users.acl: the ACL users, one `user` line each (an ACL file takes no comment);
    `more`, further lines (a node's topology users). `app_password` is None only when
    authentication is off."""
    app_secret = password_secrets(app_password, previous.app) if app_password else "nopass"
    lines = [
        f"user {settings.app_username} reset on {app_secret} {acl_rules(settings)}",
        f"user {settings.admin_username} reset on {password_secrets(admin_password, previous.admin)} ~* &* +@all",
        f"user {HEALTHCHECK_USER} reset on #{password_hash(HEALTHCHECK_PASSWORD)} -@all +ping",
    ]
    if exporter_password:
        exporter = password_secrets(exporter_password, previous.exporter)
        lines.append(f"user {EXPORTER_USER} reset on {exporter} {EXPORTER_RULES}")
    if settings.app_username != "default":
        lines.append("user default reset off")
    return "\n".join([*lines, *more]) + "\n"


def healthcheck_command(settings: Settings, port: int | None = None) -> list[str]:
    """Docker healthcheck: PONG or unhealthy (`redis-cli ping` exits 0 on NOAUTH). `port`:
    a node or Sentinel of the sentinel topology, on its host's network."""
    tls = f" --tls --cacert {TLS_DIR}/ca.crt" if settings.tls_enabled else ""
    if port is not None:
        tls += f" -p {port}"
    if settings.tls_enabled:
        # Whatever tls-auth-clients says (it changes while Redis runs): the check never
        # changes with it, and a server that asks for no certificate takes one too.
        tls += f" --cert {TLS_DIR}/tls.crt --key {TLS_DIR}/tls.key"
    return [
        "CMD-SHELL",
        f"{settings.flavour}-cli{tls} --no-auth-warning --user {HEALTHCHECK_USER} --pass {HEALTHCHECK_PASSWORD}"
        " ping | grep -q PONG",
    ]
