"""High availability (topology sentinel): replicas, Sentinels, the hosts they run on, and
what a write needs from the replicas."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field, ValidationError

from bizosaas_redis.settings.values import (
    MODEL_CONFIG,
    DockerHost,
    DockerName,
    JsonDict,
    JsonList,
    Port,
    Problems,
    online,
    online_sentinel,
)

if TYPE_CHECKING:
    from bizosaas_redis.settings.model import Settings

TOPOLOGIES = ("standalone", "sentinel")
# The name of the one Docker host when a stack names none.
DEFAULT_HOST = "local"
MAX_REPLICAS = 5
MAX_SENTINELS = 7


class HighAvailabilitySettings(BaseModel):
    model_config = MODEL_CONFIG

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
        json_schema_extra=online_sentinel("down-after-milliseconds"),
    )
    failover_timeout: int = Field(
        10_000,
        ge=1000,
        le=3_600_000,
        description="Sentinel's failover-timeout (ms). A Sentinel that lost an election (two Sentinels split "
        "the vote) tries again only twice this after its first attempt, so it bounds the unlucky failover "
        "(about downAfterMilliseconds + 2 x failoverTimeout); Redis's own default, 180 000, would make that "
        "six minutes. It also bounds the reconfiguration of the other replicas after a promotion.",
        json_schema_extra=online_sentinel("failover-timeout"),
    )
    min_replicas_to_write: int | None = Field(
        None,
        ge=0,
        le=MAX_REPLICAS,
        description="Default 1 in production with topology sentinel, else 0. The primary refuses writes unless "
        "this many replicas acknowledged within minReplicasMaxLag: a primary cut off from its replicas stops "
        "taking writes that a failover would drop, at the cost of refusing writes when replicas are down.",
        json_schema_extra=online("min-replicas-to-write"),
    )
    min_replicas_max_lag: int = Field(
        10,
        ge=1,
        le=3600,
        description="Seconds a replica may lag and still count for minReplicasToWrite.",
        json_schema_extra=online("min-replicas-max-lag"),
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
    docker_hosts: Annotated[dict[DockerName, DockerHost], JsonDict] = Field(
        default_factory=dict,
        description="Docker hosts by name, each `{url, address}`. Default: one host, the default Docker "
        "endpoint, at advertisedHost (or the publish address). One host protects against a process dying, "
        "not against the host failing.",
    )
    placement: Annotated[list[DockerName], JsonList] = Field(
        default_factory=list,
        description="The host of node 0 (first primary), then of each replica. Default: dockerHosts in turn.",
    )
    sentinel_placement: Annotated[list[DockerName], JsonList] = Field(
        default_factory=list,
        description="The host of each Sentinel. Default: dockerHosts in turn.",
    )


def default_replication(data: dict[str, Any]) -> dict[str, Any]:
    """A cut-off primary stops taking writes in production (a replica must confirm them);
    durable writes wait for a replica wherever there is one."""
    if data.get("minReplicasToWrite", data.get("min_replicas_to_write")) is None:
        production = data.get("environment") == "production" and data.get("topology") == "sentinel"
        data = {**data, "minReplicasToWrite": 1 if production else 0}
    if data.get("durableWriteReplicas", data.get("durable_write_replicas")) is None:
        data = {**data, "durableWriteReplicas": 1 if data.get("topology") == "sentinel" else 0}
    return data


def check(s: Settings, problems: Problems) -> None:
    if s.topology != "sentinel":
        if s.durable_write_replicas:
            problems.add(
                "durable_write_replicas", "must be 0 with topology standalone: no replica confirms", "topology"
            )
        return
    _check_counts(s, problems)
    if not s.docker_hosts:
        try:
            DockerHost(address=s.url_host)
        except ValidationError:
            problems.add(
                "docker_hosts",
                f"must be set: the default host's address would be {s.url_host!r}, "
                "not an IP address that Sentinels announce",
                "advertised_host",
            )
            return
    _check_placement(s, problems)
    _check_ports(s, problems)
    for key, reason in (
        ("tls_enabled", "TLS replication is not built yet"),
        ("unix_socket", "clients must follow the primary from node to node through Sentinel"),
    ):
        if getattr(s, key):
            problems.add(key, f"cannot be true with topology sentinel: {reason}", "topology")


def _check_counts(s: Settings, problems: Problems) -> None:
    if s.sentinels % 2 == 0:
        problems.add("sentinels", "must be odd: an even number adds no tolerance of failures, only votes to split")
    if s.sentinel_quorum > s.sentinels:
        problems.add("sentinel_quorum", f"must not exceed sentinels ({s.sentinels})", "sentinels")
    if (s.min_replicas_to_write or 0) > s.replicas:
        problems.add(
            "min_replicas_to_write", f"must not exceed replicas ({s.replicas}): no write would pass", "replicas"
        )
    if (s.durable_write_replicas or 0) > s.replicas:
        problems.add(
            "durable_write_replicas",
            f"must not exceed replicas ({s.replicas}): no durable write would be confirmed",
            "replicas",
        )


def _check_placement(s: Settings, problems: Problems) -> None:
    hosts = s.hosts
    for key, count in (("placement", s.replicas + 1), ("sentinel_placement", s.sentinels)):
        given = getattr(s, key)
        if given and len(given) != count:
            problems.add(key, f"must name {count} hosts (one per {'node' if key == 'placement' else 'Sentinel'})")
        unknown = sorted(set(given) - set(hosts))
        if unknown:
            problems.add(key, f"names unknown host(s) {', '.join(unknown)}; dockerHosts has {', '.join(hosts)}")


def _check_ports(s: Settings, problems: Problems) -> None:
    nodes = range(s.host_port, s.host_port + s.replicas + 1)
    sentinel_ports = range(s.sentinel_port, s.sentinel_port + s.sentinels)
    if nodes[-1] > 65535 or sentinel_ports[-1] > 65535:
        problems.add(
            "host_port", "leaves no room for every node's and Sentinel's port (each counts up)", "sentinel_port"
        )
    elif set(nodes) & set(sentinel_ports):
        problems.add("sentinel_port", f"overlaps the nodes' ports {nodes[0]}-{nodes[-1]}", "host_port", "replicas")
    # Node N's exporter listens on exporterPort + N, Sentinel j's on exporterPort + replicas + j.
    exporters = range(s.exporter_port, s.exporter_port + s.replicas + 1 + s.sentinels)
    if s.exporter_enabled and (exporters[-1] > 65535 or set(exporters) & (set(nodes) | set(sentinel_ports))):
        problems.add(
            "exporter_port",
            f"must leave room for one port per node and Sentinel ({len(exporters)}), apart from the nodes' and "
            "Sentinels' ports (node N's exporter listens on exporterPort + N, Sentinel j's on "
            "exporterPort + replicas + j)",
            "host_port",
            "sentinel_port",
        )
