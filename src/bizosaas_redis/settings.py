"""The stack settings: one typed, validated model that everything else derives from.

A stack's settings live in the `redis:` namespace of `Pulumi.<stack>.yaml`. The Pulumi
program reads them through `pulumi.Config`; scripts and tests read the same file with
`load_stack_file`, with no Pulumi engine. Every field carries its default and a one-line
description; `config_docs` turns them into the README's configuration table.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic_core import ErrorDetails

from bizosaas_redis.constants import (
    DEFAULT_BROKER_DB,
    DEFAULT_CACHE_DB,
    DEFAULT_CACHE_TTL,
    DEFAULT_RESULT_DB,
    DEFAULT_SESSION_TTL,
    DEFAULT_STREAM_MAXLEN,
)
from bizosaas_redis.errors import BizosaasRedisError

# The service's RDB rules as it runs today (save 900 1 / 300 10 / 60 10000).
DEFAULT_SAVE = ((900, 1), (300, 10), (60, 10000))
NAMESPACE = "redis"
# Secret keys are read with get_secret by the program; the model never holds them.
# The durable instance of a split stack has its own (`durablePassword`, ...).
# `replicationPassword` and `sentinelPassword` only with topology sentinel.
INSTANCE_SECRET_KEYS = ("password", "adminPassword", "exporterPassword", "replicationPassword", "sentinelPassword")
DURABLE_PREFIX = "durable"
# Settings fields that are not config keys (set by build_settings).
INTERNAL_FIELDS = ("stack", "role")
SECRET_KEYS = (
    *INSTANCE_SECRET_KEYS,
    *(DURABLE_PREFIX + key[0].upper() + key[1:] for key in INSTANCE_SECRET_KEYS),
)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
# The Pulumi project folder (Pulumi.yaml and the stack files) when it is not the checkout:
# the tests deploy the real stack files' settings under their own names from such a copy.
PROJECT_DIR_VARIABLE = "BIZOSAAS_PROJECT_DIR"


def project_dir() -> Path:
    return Path(os.environ.get(PROJECT_DIR_VARIABLE) or PROJECT_ROOT)


MAXMEMORY_POLICIES = (
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
)
# Headroom the container needs above maxmemory: a BGSAVE/AOF rewrite fork copies
# pages on write, and client/replication buffers are not counted in maxmemory.
# Measured (tests/integration/test_faults.py): writing flat out while BGSAVE and AOF rewrites
# fork peaks at 1.64 x maxmemory in RSS at 128mb-256mb and up to 1.8 x at 32mb (copy-on-write
# plus a fixed overhead); 1.5 x was OOM-killed at 32mb, 128mb and 256mb. The container gets
# twice maxmemory, and at least maxmemory + 64 MB for small ones.
MIN_MEMORY_HEADROOM = 2.0
MIN_MEMORY_OVERHEAD = 64 * 1024**2


def minimum_memory_limit(maxmemory: int) -> int:
    return max(math.ceil(MIN_MEMORY_HEADROOM * maxmemory), maxmemory + MIN_MEMORY_OVERHEAD)


LAYOUTS = ("single", "split")
# What an instance holds: `shared` everything (layout single); `cache` what may be evicted;
# `durable` the Celery broker and results, streams, sessions and the JWT blacklist.
Role = Literal["shared", "cache", "durable"]
# Settings both instances of a split stack share, written once at the top level.
SHARED_SETTINGS = (
    "environment",
    "flavour",
    "image",
    "publish_address",
    "advertised_host",
    "network_name",
    "network_external",
    "auth_enabled",
    "app_username",
    "admin_username",
    "tls_enabled",
    "tls_certs_dir",
    "tls_auth_clients",
    "restart_policy",
    "exporter_enabled",
    "exporter_image",
    "databases",
    "cache_db",
    "celery_broker_db",
    "celery_result_db",
    "cache_ttl",
    "session_ttl",
    "stream_maxlen",
    "layout",
    "durable",
)
# The durable instance's host ports: the cache's plus this, unless its block sets them.
# Larger than the most nodes (or Sentinels) one instance runs, so their ports never meet.
DURABLE_PORT_OFFSET = 10
TOPOLOGIES = ("standalone", "sentinel")
# The name of the one Docker host when a stack names none.
DEFAULT_HOST = "local"
MAX_REPLICAS = 5
MAX_SENTINELS = 7

# ACL users the service defines for itself.
RESERVED_USERS = ("healthcheck", "exporter")
# Commands an application user must always have, or clients and the healthcheck break.
ESSENTIAL_COMMANDS = ("PING", "AUTH", "HELLO", "SELECT", "QUIT", "RESET")
DEFAULT_DENIED_COMMANDS = [
    "FLUSHALL",
    "FLUSHDB",
    "KEYS",
    "DEBUG",
    "CONFIG",
    "SHUTDOWN",
    "MONITOR",
    "SAVE",
    "BGSAVE",
    "BGREWRITEAOF",
    "REPLICAOF",
    "SLAVEOF",
    "MIGRATE",
    "MODULE",
    "SWAPDB",
    "FAILOVER",
    "ACL",
    "SYNC",
    "PSYNC",
]

_SIZE_RE = re.compile(r"^\s*(\d+)\s*(b|k|kb|m|mb|g|gb)?\s*$", re.IGNORECASE)
# Redis units: k/m/g are powers of 1000, kb/mb/gb powers of 1024 (see redis.conf).
_UNITS = {
    "b": 1,
    "k": 1000,
    "kb": 1024,
    "m": 1000**2,
    "mb": 1024**2,
    "g": 1000**3,
    "gb": 1024**3,
}


def parse_size(value: Any) -> int:
    """Parse a Redis memory size (`2gb`, `512mb`, `1000000`) into bytes."""
    if isinstance(value, bool):
        raise ValueError("must be a size such as 2gb, 512mb or a number of bytes")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE_RE.match(str(value))
        if not match:
            raise ValueError("must be a size such as 2gb, 512mb or a number of bytes (units: b, k, kb, m, mb, g, gb)")
        size = int(match.group(1)) * _UNITS[(match.group(2) or "b").lower()]
    if size <= 0:
        raise ValueError("must be greater than zero")
    return size


def format_size(size: int) -> str:
    """Format bytes with the largest binary Redis unit that divides them exactly."""
    for unit in ("gb", "mb", "kb"):
        if size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return str(size)


Size = Annotated[int, BeforeValidator(parse_size)]
Seconds = Annotated[int, Field(ge=0, le=31_536_000)]
Port = Annotated[int, Field(ge=1, le=65535)]
DockerName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")]


def _json_list(value: Any) -> Any:
    # Pulumi hands structured config to the program as JSON strings.
    if isinstance(value, str) and value.strip().startswith("["):
        return json.loads(value)
    return value


def _yaml_word(value: Any) -> Any:
    # YAML 1.1 readers (PyYAML) turn a bare `no`/`yes` into a bool; Pulumi's reads a string.
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


YamlWord = BeforeValidator(_yaml_word)


def _json_dict(value: Any) -> Any:
    if isinstance(value, str) and value.strip().startswith("{"):
        return json.loads(value)
    return value


class SaveRule(BaseModel):
    """One RDB snapshot rule: save after `seconds` if at least `changes` keys changed."""

    seconds: int = Field(ge=1)
    changes: int = Field(ge=1)

    def __str__(self) -> str:
        return f"{self.seconds} {self.changes}"


class DockerHost(BaseModel):
    """A Docker host nodes and Sentinels of the sentinel topology run on."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    url: str | None = Field(
        None,
        pattern=r"^(unix|tcp|ssh)://\S+$",
        description="Docker endpoint (`unix:///var/run/docker.sock`, `ssh://deploy@10.0.0.2`); none: the default one.",
    )
    address: str = Field(description="IP address the nodes on this host listen on and announce.")

    @field_validator("address")
    @classmethod
    def _concrete_ip(cls, value: str) -> str:
        try:
            parsed = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("must be an IP address") from None
        if parsed.is_unspecified:
            raise ValueError("must be a concrete address that Sentinels and clients reach, not a wildcard")
        return value


def _parse_save_rule(value: Any) -> Any:
    if isinstance(value, str):
        parts = value.split()
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ValueError('each rule must be "<seconds> <changes>", e.g. "900 1"')
        return {"seconds": int(parts[0]), "changes": int(parts[1])}
    return value


class Settings(BaseModel):
    """Settings of one Redis stack. Keys are the camelCase names under `redis:`."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    # Identity and image
    environment: Literal["dev", "staging", "production"] = Field(
        "dev", description="Environment class; production turns on the strictest rules."
    )
    container_name: DockerName | None = Field(None, description="Container name. Default: `bizosaas-redis-<stack>`.")
    flavour: Annotated[Literal["redis", "valkey"], YamlWord] = Field(
        "redis",
        description="Server: `redis` or `valkey` (BSD-3 licensed; reads RDB up to format 11, so data written "
        "by Redis 7.4 or later cannot move to it).",
    )
    image: str = Field(
        "redis:7-alpine",
        pattern=r"^[a-z0-9][a-z0-9._/:-]*(@sha256:[a-f0-9]{64})?$",
        description="Server image of the flavour; pin an exact version or digest in production.",
    )
    layout: Literal[LAYOUTS] = Field(  # type: ignore[valid-type]
        "single",
        description="Default `split` in production. `single`: one instance holds caches, sessions, queues and "
        "streams (as the service runs today). `split`: the top-level settings make a cache instance that may "
        "evict, and a second, durable instance (`noeviction`, AOF) holds the Celery broker and results, "
        "streams, sessions and the JWT blacklist, so that eviction never drops them.",
    )
    durable: Annotated[dict[str, Any], BeforeValidator(_json_dict)] = Field(
        default_factory=dict,
        description="With layout `split`: the durable instance's own settings (keys of this table). Unset "
        "ones are the top-level ones, except: containerName `<containerName>-durable`, volumeName "
        "`<volumeName>_durable`, hostPort and exporterPort + 10, networkAliases each + `-durable`, "
        "maxmemoryPolicy `noeviction` (the only one allowed), appendonly true, save the default rules. "
        "Identity, image, network, auth, TLS and databases are shared and set once at the top level.",
    )
    # High availability (topology sentinel)
    topology: Literal[TOPOLOGIES] = Field(  # type: ignore[valid-type]
        "standalone",
        description="`standalone`: one container. `sentinel`: a primary, `replicas` replicas and `sentinels` "
        "Redis Sentinels, placed on `dockerHosts`; clients find the primary through Sentinel, which promotes a "
        "replica when the primary fails. Nodes and Sentinels use their host's network (no port mapping, which "
        "breaks Sentinel's discovery): node i listens on hostPort + i, Sentinel j on sentinelPort + j - 1.",
    )
    replicas: int = Field(2, ge=1, le=MAX_REPLICAS, description="Replicas of the primary (topology sentinel).")
    sentinels: int = Field(3, ge=3, le=MAX_SENTINELS, description="Sentinels; an odd number, at least 3.")
    sentinel_quorum: int = Field(
        2, ge=1, description="Sentinels that must agree the primary is down before a failover starts."
    )
    sentinel_port: Port = Field(26380, description="Port of the first Sentinel; the next ones count up.")
    down_after_milliseconds: int = Field(
        5000,
        ge=100,
        le=3_600_000,
        description="Silence after which a Sentinel deems a node down (ms). Lower: faster failover, and "
        "failovers on short network hiccups.",
    )
    failover_timeout: int = Field(
        10_000,
        ge=1000,
        le=3_600_000,
        description="Sentinel's failover-timeout (ms). A Sentinel that lost an election (two Sentinels split "
        "the vote) tries again only after it, so it bounds the unlucky failover (measured: 10 s to a new "
        "primary at 10 000); Redis's own default, 180 000, would make that three minutes. It also bounds "
        "the reconfiguration of the other replicas after a promotion.",
    )
    min_replicas_to_write: int | None = Field(
        None,
        ge=0,
        le=MAX_REPLICAS,
        description="Default 1 in production, else 0. The primary refuses writes unless this many replicas "
        "acknowledged within minReplicasMaxLag: a primary cut off from its replicas stops taking writes that a "
        "failover would drop, at the cost of refusing writes when replicas are down.",
    )
    min_replicas_max_lag: int = Field(
        10, ge=1, le=3600, description="Seconds a replica may lag and still count for minReplicasToWrite."
    )
    durable_write_replicas: int | None = Field(
        None,
        ge=0,
        le=MAX_REPLICAS,
        description="Default 1 with topology sentinel, else 0. Replicas that must confirm each durable write "
        "(sessions, the JWT blacklist, stream events) before the consumer library reports it done (`WAIT`; "
        "consumers get it as REDIS_WAIT_REPLICAS): a failover then cannot lose a write a client was told "
        "was stored.",
    )
    durable_write_timeout_ms: int = Field(
        1000,
        ge=10,
        le=60_000,
        description="How long a durable write waits for its replicas (ms) before it fails with NotDurable "
        "(REDIS_WAIT_TIMEOUT_MS).",
    )
    docker_hosts: Annotated[dict[DockerName, DockerHost], BeforeValidator(_json_dict)] = Field(
        default_factory=dict,
        description="Docker hosts by name, each `{url, address}`. Default: one host, the default Docker "
        "endpoint, at advertisedHost (or the publish address). One host protects against a process dying, "
        "not against the host failing.",
    )
    placement: Annotated[list[DockerName], BeforeValidator(_json_list)] = Field(
        default_factory=list,
        description="The host of node 0 (first primary), then of each replica. Default: dockerHosts in turn.",
    )
    sentinel_placement: Annotated[list[DockerName], BeforeValidator(_json_list)] = Field(
        default_factory=list,
        description="The host of each Sentinel. Default: dockerHosts in turn.",
    )
    # Network and publishing
    host_port: Port = Field(6380, description="Port published on the Docker host.")
    publish_address: str = Field(
        "127.0.0.1",
        description="Host address the port is published on (0.0.0.0 = all interfaces).",
    )
    advertised_host: str | None = Field(
        None,
        description="Host name in `redis_url`. Default: the publish address, or 127.0.0.1 when that is a wildcard.",
    )
    network_name: DockerName = Field("dokploy-network", description="Docker network consumers reach Redis on.")
    network_external: bool = Field(True, description="The network exists already (Dokploy creates it); else create it.")
    network_aliases: Annotated[list[DockerName], BeforeValidator(_json_list)] = Field(
        default_factory=lambda: ["redis"],
        description="DNS aliases of the container on the network.",
    )
    unix_socket: bool = Field(
        False,
        description="Also listen on a unix socket in a volume of its own (`<container>-socket`, in memory) that "
        "co-located consumer containers mount, running with group 1000. Measured: 1.2 × the requests/s of "
        "loopback TCP unpipelined, where host tools through the published port get 0.3 × (Docker's userland "
        "proxy).",
    )
    volume_name: DockerName = Field("redis_data", description="Named volume mounted at /data (RDB, AOF, redis.conf).")
    retain_data_on_destroy: bool = Field(True, description="Keep the data volume when the stack is destroyed.")
    # Memory and clients
    maxmemory: Size = Field(2 * 1024**3, description="Redis `maxmemory` (units: kb, mb, gb).")
    maxmemory_policy: Literal[MAXMEMORY_POLICIES] = Field(  # type: ignore[valid-type]
        "allkeys-lru", description="Eviction policy when maxmemory is reached."
    )
    maxmemory_samples: int = Field(5, ge=1, le=64, description="Keys sampled per eviction.")
    memory_limit: Size | None = Field(
        None,
        description="Container memory limit. Default and minimum: 2 × maxmemory, at least maxmemory + 64mb "
        "(writing during a snapshot peaked at 1.64-1.8 × in RSS).",
    )
    maxclients: int = Field(1000, ge=1, le=100_000, description="Redis `maxclients`.")
    timeout: Seconds = Field(300, description="Close client connections idle this long (s).")
    tcp_keepalive: Seconds = Field(300, description="TCP keepalive probe interval (s).")
    databases: int = Field(16, ge=1, le=64, description="Number of logical databases.")
    # How consumers use the databases and TTLs (exported to them)
    cache_db: int = Field(DEFAULT_CACHE_DB, ge=0, description="Database for caches and sessions.")
    celery_broker_db: int = Field(DEFAULT_BROKER_DB, ge=0, description="Database of the Celery broker.")
    celery_result_db: int = Field(DEFAULT_RESULT_DB, ge=0, description="Database of Celery results.")
    cache_ttl: Seconds = Field(DEFAULT_CACHE_TTL, gt=0, description="Default cache TTL (s).")
    session_ttl: Seconds = Field(DEFAULT_SESSION_TTL, gt=0, description="Session TTL (s).")
    stream_maxlen: int = Field(DEFAULT_STREAM_MAXLEN, ge=1, description="Approximate MAXLEN of event streams.")
    # Persistence
    save: Annotated[
        list[Annotated[SaveRule, BeforeValidator(_parse_save_rule)]],
        BeforeValidator(_json_list),
    ] = Field(
        default_factory=lambda: [SaveRule(seconds=s, changes=c) for s, c in DEFAULT_SAVE],
        description='RDB rules, each "<seconds> <changes>"; an empty list turns RDB off.',
    )
    appendonly: bool = Field(
        True,
        description="Turn on the append-only file (AOF). Switching it on keeps the data: the first start "
        "with it seeds the AOF from the snapshot written at stop.",
    )
    appendfsync: Annotated[Literal["always", "everysec", "no"], YamlWord] = Field(
        "everysec", description="AOF fsync policy."
    )
    save_on_shutdown: bool = Field(
        True,
        description="With AOF off: write a snapshot when the container is stopped or replaced, even with RDB "
        "rules off (`shutdown-on-sigterm save`), so a replacement keeps what was in memory. With AOF on, a stop "
        "flushes the AOF and writes no snapshot (`nosave`: at 1.5 GB a replacement waited 7.4 s, 23.1 s with one; "
        "see the README's performance section); switching AOF off loads the AOF once at start.",
    )
    # Security
    auth_enabled: bool = Field(True, description="Require a password (required in production).")
    app_username: DockerName = Field(
        "default",
        description="ACL user of the applications (`default` serves password-only clients).",
    )
    admin_username: DockerName = Field("admin", description="ACL user with every command.")
    denied_commands: Annotated[list[str], BeforeValidator(_json_list)] = Field(
        default_factory=lambda: list(DEFAULT_DENIED_COMMANDS),
        description="Commands the application user may not run (ACL `-cmd`).",
    )
    tls_enabled: bool = Field(False, description="Serve TLS only on the Redis port.")
    tls_certs_dir: str | None = Field(
        None,
        description="Host folder with tls.crt, tls.key and ca.crt (owned by 999:1000), mounted read-only at /tls.",
    )
    tls_auth_clients: Annotated[Literal["yes", "no", "optional"], YamlWord] = Field(
        "optional", description="Require client certificates."
    )
    # Container runtime
    restart_policy: Annotated[Literal["no", "always", "unless-stopped", "on-failure"], YamlWord] = Field(
        "unless-stopped", description="Docker restart policy."
    )
    stop_grace_period: int = Field(
        30,
        ge=1,
        le=3600,
        description="Seconds Redis gets to write its snapshot when stopped, replaced or destroyed, before SIGKILL.",
    )
    healthcheck_interval: int = Field(10, ge=1, le=3600, description="Healthcheck interval (s).")
    healthcheck_timeout: int = Field(5, ge=1, le=3600, description="Healthcheck timeout (s).")
    healthcheck_retries: int = Field(5, ge=1, le=100, description="Failures before unhealthy.")
    healthcheck_start_period: int = Field(10, ge=0, le=3600, description="Grace period after start (s).")
    log_max_size: Annotated[str, Field(pattern=r"^\d+[kmg]$")] = Field(
        "10m", description="json-file log rotation size."
    )
    log_max_files: int = Field(3, ge=1, le=100, description="Rotated log files kept.")
    loglevel: Literal["debug", "verbose", "notice", "warning"] = Field("notice", description="Redis log level.")
    labels: Annotated[dict[str, str], BeforeValidator(_json_dict)] = Field(
        default_factory=dict, description="Extra container labels."
    )
    # Monitoring: the thresholds bizosaas-redis monitor and the Prometheus rules share
    alert_memory_percent: int = Field(
        80, ge=1, le=100, description="WARN when used memory exceeds this % of maxmemory."
    )
    alert_memory_critical_percent: int = Field(95, ge=1, le=100, description="CRIT above this % of maxmemory.")
    alert_clients_percent: int = Field(90, ge=1, le=100, description="WARN when clients exceed this % of maxclients.")
    alert_clients_critical_percent: int = Field(98, ge=1, le=100, description="CRIT above this % of maxclients.")
    alert_hit_rate_percent: int = Field(
        80, ge=0, le=100, description="WARN when the keyspace hit rate falls below this %."
    )
    alert_hit_rate_critical_percent: int = Field(50, ge=0, le=100, description="CRIT below this hit rate %.")
    alert_evictions_per_second: int = Field(1000, ge=1, description="WARN above this many evictions per second.")
    alert_evictions_critical_per_second: int = Field(10_000, ge=1, description="CRIT above this many evictions/s.")
    alert_last_save_age: Seconds = Field(
        3600, gt=0, description="WARN when the last successful RDB save is older than this (s), RDB on."
    )
    exporter_enabled: bool = Field(False, description="Run a redis_exporter sidecar for Prometheus.")
    exporter_image: str = Field(
        "oliver006/redis_exporter:v1.62.0",
        pattern=r"^[a-z0-9][a-z0-9._/:-]*(@sha256:[a-f0-9]{64})?$",
        description="redis_exporter image.",
    )
    exporter_port: Port = Field(
        9121,
        description="Host port of the exporter's /metrics (on publishAddress); with topology sentinel, node N's "
        "exporter listens on its host's address at exporterPort + N.",
    )

    # Not config keys: the stack the settings belong to, for names and messages, and what
    # this instance holds (set by build_settings).
    stack: str = Field("dev", exclude=True, description="")
    role: Role = Field("shared", exclude=True, description="")

    @model_validator(mode="before")
    @classmethod
    def _layout_and_role(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        # Production keeps queues and sessions out of eviction unless its stack says otherwise.
        if "layout" not in data and data.get("environment") == "production":
            data = {**data, "layout": "split"}
        if "role" not in data:  # the durable instance is built with its role given
            data = {**data, "role": "cache" if data.get("layout") == "split" else "shared"}
        # A cut-off primary stops taking writes in production (a replica must confirm them).
        if data.get("minReplicasToWrite", data.get("min_replicas_to_write")) is None:
            production = data.get("environment") == "production" and data.get("topology") == "sentinel"
            data = {**data, "minReplicasToWrite": 1 if production else 0}
        if data.get("durableWriteReplicas", data.get("durable_write_replicas")) is None:
            data = {**data, "durableWriteReplicas": 1 if data.get("topology") == "sentinel" else 0}
        return data

    @field_validator("publish_address")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("must be an IP address such as 127.0.0.1 or 0.0.0.0") from None
        return value

    @field_validator("denied_commands")
    @classmethod
    def _commands(cls, value: list[str]) -> list[str]:
        out = []
        for command in value:
            name = command.strip().upper()
            if not re.fullmatch(r"[A-Z][A-Z-]*(\|[A-Z-]+)?", name):
                raise ValueError(f"{command!r} is not a command name (e.g. FLUSHALL, CONFIG|SET)")
            if name in ESSENTIAL_COMMANDS:
                raise ValueError(
                    f"{name} cannot be denied: clients and the healthcheck need {', '.join(ESSENTIAL_COMMANDS)}"
                )
            out.append(name)
        return out

    @model_validator(mode="after")
    def _cross_field(self) -> Settings:
        # (key, value, what is allowed, every field the rule reads)
        problems: list[tuple[str, Any, str, tuple[str, ...]]] = []

        def add(key: str, message: str, *others: str, value: Any = None, show: bool = False) -> None:
            problems.append((key, value if show else getattr(self, key), message, (key, *others)))

        for key in ("cache_db", "celery_broker_db", "celery_result_db"):
            if getattr(self, key) >= self.databases:
                add(key, f"must be below databases ({self.databases})", "databases")
        if self.celery_broker_db == self.celery_result_db:
            add("celery_result_db", "must differ from celeryBrokerDb", "celery_broker_db")
        if self.memory_limit is not None and self.memory_limit < minimum_memory_limit(self.maxmemory):
            add(
                "memory_limit",
                f"must be at least {MIN_MEMORY_HEADROOM} × maxmemory and maxmemory + 64mb "
                f"({format_size(minimum_memory_limit(self.maxmemory))}) "
                "for fork copy-on-write and client buffers",
                "maxmemory",
                value=format_size(self.memory_limit),
                show=True,
            )
        if self.healthcheck_timeout > self.healthcheck_interval:
            add("healthcheck_timeout", "must not exceed healthcheckInterval", "healthcheck_interval")
        if self.environment == "production" and not self.auth_enabled:
            add("auth_enabled", "must be true in production", "environment")
        if self.tls_enabled and not self.tls_certs_dir:
            add("tls_certs_dir", "is required when tlsEnabled is true", "tls_enabled")
        if self.flavour not in self.image.split("@")[0].rsplit("/", 1)[-1]:
            add("image", f"is not a {self.flavour} image (flavour {self.flavour})", "flavour")
        if self.tls_enabled and self.exporter_enabled and self.tls_auth_clients == "yes":
            add(
                "tls_auth_clients",
                "cannot be yes with exporterEnabled: redis_exporter verifies Redis with ca.crt but has no client "
                "certificate of its own; use optional (clients that present one are still verified)",
                "exporter_enabled",
                "tls_enabled",
            )
        for warn, crit in (
            ("alert_memory_percent", "alert_memory_critical_percent"),
            ("alert_clients_percent", "alert_clients_critical_percent"),
            ("alert_evictions_per_second", "alert_evictions_critical_per_second"),
        ):
            if getattr(self, crit) < getattr(self, warn):
                add(crit, f"must be at least {to_camel(warn)} ({getattr(self, warn)})", warn)
        if self.alert_hit_rate_critical_percent > self.alert_hit_rate_percent:
            add(
                "alert_hit_rate_critical_percent",
                f"must not exceed alertHitRatePercent ({self.alert_hit_rate_percent})",
                "alert_hit_rate_percent",
            )
        if self.exporter_enabled and self.exporter_port == self.host_port:
            add("exporter_port", "must differ from hostPort", "exporter_enabled", "host_port")
        if self.app_username == self.admin_username:
            add("admin_username", "must differ from appUsername", "app_username")
        for key in ("app_username", "admin_username"):
            if getattr(self, key) in RESERVED_USERS:
                add(key, f"is reserved ({', '.join(RESERVED_USERS)})")
        if self.role == "durable" and self.maxmemory_policy != "noeviction":
            add("maxmemory_policy", "must be noeviction on the durable instance: it must refuse writes, never evict")
        if self.topology == "sentinel":
            problems.extend(self._topology_problems())
        elif self.durable_write_replicas:
            add("durable_write_replicas", "must be 0 with topology standalone: no replica confirms", "topology")
        if self.layout == "single" and self.durable:
            add("durable", "is only read with layout split", "layout")
        if self.role != "durable":
            shared = sorted(to_camel(key) for key in SHARED_SETTINGS if key in self.durable)
            if shared:
                add(
                    "durable",
                    f"may not set {', '.join(shared)}: both instances share it, set it once at the top level",
                    value=shared,
                    show=True,
                )
        if problems:
            raise ValueError(
                json.dumps([[to_camel(k), v, m, [to_camel(f) for f in fields]] for k, v, m, fields in problems])
            )
        return self

    def _topology_problems(self) -> list[tuple[str, Any, str, tuple[str, ...]]]:
        out: list[tuple[str, Any, str, tuple[str, ...]]] = []

        def add(key: str, message: str, *others: str) -> None:
            out.append((key, getattr(self, key), message, (key, *others)))

        if self.sentinels % 2 == 0:
            add("sentinels", "must be odd: an even number adds no tolerance of failures, only votes to split")
        if self.sentinel_quorum > self.sentinels:
            add("sentinel_quorum", f"must not exceed sentinels ({self.sentinels})", "sentinels")
        assert self.min_replicas_to_write is not None
        if self.min_replicas_to_write > self.replicas:
            add("min_replicas_to_write", f"must not exceed replicas ({self.replicas}): no write would pass", "replicas")
        assert self.durable_write_replicas is not None
        if self.durable_write_replicas > self.replicas:
            add(
                "durable_write_replicas",
                f"must not exceed replicas ({self.replicas}): no durable write would be confirmed",
                "replicas",
            )
        if not self.docker_hosts:
            try:
                DockerHost(address=self.url_host)
            except ValidationError:
                add(
                    "docker_hosts",
                    f"must be set: the default host's address would be {self.url_host!r}, "
                    "not an IP address that Sentinels announce",
                    "advertised_host",
                )
                return out
        hosts = self.hosts
        for key, count in (("placement", self.replicas + 1), ("sentinel_placement", self.sentinels)):
            given = getattr(self, key)
            if given and len(given) != count:
                add(key, f"must name {count} hosts (one per {'node' if key == 'placement' else 'Sentinel'})")
            unknown = sorted(set(given) - set(hosts))
            if unknown:
                add(key, f"names unknown host(s) {', '.join(unknown)}; dockerHosts has {', '.join(hosts)}")
        nodes = range(self.host_port, self.host_port + self.replicas + 1)
        sentinel_ports = range(self.sentinel_port, self.sentinel_port + self.sentinels)
        if nodes[-1] > 65535 or sentinel_ports[-1] > 65535:
            add("host_port", "leaves no room for every node's and Sentinel's port (each counts up)", "sentinel_port")
        elif set(nodes) & set(sentinel_ports):
            add("sentinel_port", f"overlaps the nodes' ports {nodes[0]}-{nodes[-1]}", "host_port", "replicas")
        exporters = range(self.exporter_port, self.exporter_port + self.replicas + 1)
        if self.exporter_enabled and (exporters[-1] > 65535 or set(exporters) & (set(nodes) | set(sentinel_ports))):
            add(
                "exporter_port",
                "must leave room for one port per node, apart from the nodes' and Sentinels' ports "
                "(node N's exporter listens on exporterPort + N)",
                "host_port",
                "sentinel_port",
            )
        for key, reason in (
            ("tls_enabled", "TLS replication is not built yet"),
            ("unix_socket", "clients must follow the primary from node to node through Sentinel"),
        ):
            if getattr(self, key):
                add(key, f"cannot be true with topology sentinel: {reason}", "topology")
        return out

    @property
    def hosts(self) -> dict[str, DockerHost]:
        """The Docker hosts of the sentinel topology: as set, or the one default host."""
        if self.docker_hosts:
            return dict(self.docker_hosts)
        return {DEFAULT_HOST: DockerHost(address=self.url_host)}

    # Derived values: computed here so that program, scripts and tests agree.
    @property
    def licence(self) -> str:
        """The server's licence, from the flavour and the version its tag names."""
        if self.flavour == "valkey":
            return "BSD-3-Clause"
        found = re.search(r":v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", self.image.split("@")[0].rsplit("/", 1)[-1])
        if found is None:
            return "unknown (see the image's version)"
        version = tuple(int(part) for part in found.groups() if part is not None)
        if version[0] >= 8:
            return "RSALv2 OR SSPLv1 OR AGPLv3"
        if version[:1] == (7,) and len(version) == 1:
            return "RSALv2 OR SSPLv1 (7.4 and later; BSD-3-Clause up to 7.2.4)"
        return "RSALv2 OR SSPLv1" if version[:2] >= (7, 4) else "BSD-3-Clause"

    @property
    def name(self) -> str:
        return self.container_name or f"bizosaas-redis-{self.stack}"

    @property
    def instance_id(self) -> str:
        """The stack, and `-durable` for a split stack's durable instance: names its backups
        and its Prometheus job."""
        return self.stack + ("-durable" if self.role == "durable" else "")

    def durable_values(self) -> dict[str, Any]:
        """The durable instance's settings (camelCase keys): this instance's, its role's
        defaults, then its own block. Only for layout split."""
        inherited = self.model_dump(by_alias=True, exclude={"durable"})
        defaults = {
            "containerName": f"{self.name}-durable",
            "volumeName": f"{self.volume_name}_durable",
            "hostPort": self.host_port + DURABLE_PORT_OFFSET,
            "exporterPort": self.exporter_port + DURABLE_PORT_OFFSET,
            "sentinelPort": self.sentinel_port + DURABLE_PORT_OFFSET,
            "networkAliases": [f"{alias}-durable" for alias in self.network_aliases],
            "maxmemoryPolicy": "noeviction",
            "appendonly": True,
            "save": [str(SaveRule(seconds=s, changes=c)) for s, c in DEFAULT_SAVE],
        }
        return {**inherited, **defaults, **self.durable}

    @property
    def socket_volume_name(self) -> str:
        """The in-memory volume that holds the unix socket (when `unixSocket` is on)."""
        return f"{self.name}-socket"

    @property
    def memory_limit_bytes(self) -> int:
        if self.memory_limit is not None:
            return self.memory_limit
        return minimum_memory_limit(self.maxmemory)

    @property
    def memory_limit_mb(self) -> int:
        # The Docker provider takes memory in MB.
        return math.ceil(self.memory_limit_bytes / 1024**2)

    @property
    def url_host(self) -> str:
        if self.advertised_host:
            return self.advertised_host
        if ipaddress.ip_address(self.publish_address).is_unspecified:
            return "127.0.0.1"
        return self.publish_address


class SettingsError(BizosaasRedisError, ValueError):
    """All problems of one stack's settings, each naming the key, value and what is allowed."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} invalid setting(s):\n{lines}")


def _known_keys() -> list[str]:
    return [f.alias or to_camel(n) for n, f in Settings.model_fields.items() if n not in INTERNAL_FIELDS]


def _describe(error: ErrorDetails) -> list[str]:
    loc = [str(p) for p in error["loc"]]
    key = f"{NAMESPACE}:{to_camel(loc[0])}" if loc else NAMESPACE
    # List items by index; a dockerHosts entry by host name and field.
    nested = bool(loc) and loc[0] == "docker_hosts"
    where = key + "".join(f"[{p}]" if p.isdigit() else f".{p}" if nested else "" for p in loc[1:])
    value = error.get("input")
    kind = error["type"]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(loc[0], _known_keys(), n=1)
        hint = f"; did you mean {NAMESPACE}:{close[0]}?" if close else ""
        return [f"{key}: unknown setting{hint} (known settings are listed in the README)"]
    if _is_cross_field(error):
        return [line for line, _ in _cross_field_lines(error)]
    message = error["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    if kind == "string_pattern_mismatch":
        message = f"must match {error['ctx']['pattern']}"
    return [f"{where} = {json.dumps(value, default=str)}: {message}"]


def _is_cross_field(error: ErrorDetails) -> bool:
    return error["type"] == "value_error" and str(error.get("ctx", {}).get("error", "")).startswith("[[")


def _cross_field_lines(error: ErrorDetails) -> list[tuple[str, set[str]]]:
    """Each cross-field problem as its line, with the settings its rule reads."""
    found = json.loads(str(error.get("ctx", {})["error"]))
    return [(f"{NAMESPACE}:{k} = {json.dumps(v)}: {m}", set(fields)) for k, v, m, fields in found]


def _problems(data: dict[str, Any], extra: dict[str, Any]) -> tuple[Settings | None, list[str]]:
    """Validate one instance's settings: the Settings, or every problem at once."""
    try:
        return Settings.model_validate({**data, **extra}), []
    except ValidationError as exc:
        errors = exc.errors()
    problems = [line for err in errors for line in _describe(err)]
    failed = {to_camel(str(err["loc"][0])) for err in errors if err["loc"]}
    if failed:
        # A field error stops pydantic before the cross-field rules: run them on the valid
        # settings too, keeping the problems whose rule reads no invalid setting.
        try:
            Settings.model_validate({**{k: v for k, v in data.items() if k not in failed}, **extra})
        except ValidationError as again:
            for err in again.errors():
                if _is_cross_field(err):
                    problems += [line for line, fields in _cross_field_lines(err) if not fields & failed]
    return None, problems


def build_settings(values: dict[str, Any], stack: str, source: str | None = None) -> Settings:
    """Validate raw config values (camelCase keys, no namespace) into Settings.

    With layout split, the durable instance's settings are validated too (reported as
    `redis:durable.<key>`). Raises SettingsError listing every problem at once.
    """
    source = source or f"stack {stack}"
    data = {k: v for k, v in values.items() if k not in SECRET_KEYS and k not in INTERNAL_FIELDS}
    settings, problems = _problems(data, {"stack": stack})
    if settings is not None and settings.layout == "split":
        durable, found = _problems(settings.durable_values(), {"stack": stack, "role": "durable"})
        prefix = f"{NAMESPACE}:"
        problems += [prefix + DURABLE_PREFIX + "." + line.removeprefix(prefix) for line in found]
        if durable is not None:
            problems += _split_conflicts(settings, durable)
    if problems:
        raise SettingsError(source, problems)
    assert settings is not None
    return settings


def _split_conflicts(cache: Settings, durable: Settings) -> list[str]:
    """The two instances of a split stack may not share a name, volume or host port."""
    out = []
    for key, what in (
        ("container_name", cache.name),
        ("volume_name", cache.volume_name),
        ("host_port", cache.host_port),
    ):
        mine = durable.name if key == "container_name" else getattr(durable, key)
        if mine == what:
            out.append(
                f"{NAMESPACE}:{DURABLE_PREFIX}.{to_camel(key)} = {json.dumps(mine)}: must differ from the cache "
                f"instance's {to_camel(key)}"
            )
    if cache.exporter_enabled and durable.exporter_port in (cache.exporter_port, cache.host_port):
        out.append(
            f"{NAMESPACE}:{DURABLE_PREFIX}.exporterPort = {durable.exporter_port}: must differ from the cache "
            "instance's ports"
        )
    return out


def instances(settings: Settings) -> list[Settings]:
    """The instances a stack runs: one (layout single), or the cache and the durable one."""
    if settings.layout == "single":
        return [settings]
    return [
        settings,
        Settings.model_validate({**settings.durable_values(), "stack": settings.stack, "role": "durable"}),
    ]


class NoDurableInstance(BizosaasRedisError):
    """The durable instance of a stack that has none (layout single)."""


def instance(settings: Settings, which: Literal["cache", "durable"]) -> Settings:
    """The stack's `cache` instance (the one instance of layout single) or its `durable` one."""
    running = instances(settings)
    if which == "cache":
        return running[0]
    if len(running) == 1:
        raise NoDurableInstance(f"stack {settings.stack} has layout {settings.layout}: it has no durable instance")
    return running[1]


def stack_file(stack: str, root: Path | None = None) -> Path:
    return (root or project_dir()) / f"Pulumi.{stack}.yaml"


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 booleans (true/false only), as Pulumi reads stack files: `no` stays a word."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Yaml12Loader)


def read_stack_config(path: Path) -> dict[str, Any]:
    """The `redis:` keys of a stack file, namespace stripped. Secure values stay ciphertext."""
    if not path.exists():
        available = sorted(p.name for p in path.parent.glob("Pulumi.*.yaml"))
        raise SettingsError(str(path), [f"no such stack file; available: {', '.join(available)}"])
    try:
        document = load_yaml(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SettingsError(path.name, [f"not valid YAML: {where}{problem}"]) from None
    if not isinstance(document, dict) or not isinstance(document.get("config") or {}, dict):
        raise SettingsError(path.name, ["not a Pulumi stack file: expected a mapping with a `config:` mapping"])
    config = document.get("config") or {}
    values: dict[str, Any] = {}
    for key, value in config.items():
        namespace, _, name = key.partition(":")
        if namespace == NAMESPACE and name:
            values[name] = value
    return values


def load_stack_file(stack: str, root: Path | None = None) -> Settings:
    """Settings of `Pulumi.<stack>.yaml`, validated with no Pulumi engine."""
    path = stack_file(stack, root)
    return build_settings(read_stack_config(path), stack, source=path.name)


def available_stacks(root: Path | None = None) -> list[str]:
    return sorted(p.name.split(".")[1] for p in (root or project_dir()).glob("Pulumi.*.yaml"))
