"""Where the nodes and Sentinels of an instance run: pure functions of its settings.

With topology `standalone` an instance is one node, the container it always was. With
topology `sentinel` it is node 0 (the first primary: the standalone container's name,
volume and port, so that a switch keeps its data), replicas 1..N and Sentinels 1..M, each
on the Docker host its placement names. Every node and Sentinel uses its host's network
and listens on the host's address, which it also announces: what Sentinel tells clients
is what they reach, on one host or several.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from bizosaas_redis.settings import DockerHost, Settings

Kind = Literal["redis", "sentinel"]


@dataclass(frozen=True)
class Placed:
    """One node or Sentinel: its container, volume, host and the address it listens on."""

    kind: Kind
    index: int  # node 0 is the first primary; Sentinels count from 1
    container_name: str
    volume_name: str
    host_name: str
    host: DockerHost
    port: int

    @property
    def address(self) -> tuple[str, int]:
        return (self.host.address, self.port)

    @property
    def endpoint(self) -> str:
        return f"{self.host.address}:{self.port}"

    @property
    def listen_addresses(self) -> list[str]:
        """What it binds: the host's address, and loopback for the healthcheck."""
        return list(dict.fromkeys([self.host.address, "127.0.0.1"]))


def master_name(settings: Settings) -> str:
    """The name Sentinels monitor the instance under (and clients ask them for)."""
    return settings.name


def _spread(settings: Settings, given: list[str], count: int) -> list[str]:
    hosts = list(settings.hosts)
    return given or [hosts[i % len(hosts)] for i in range(count)]


def nodes(settings: Settings) -> list[Placed]:
    """The instance's Redis nodes, node 0 first."""
    places = _spread(settings, settings.placement, settings.replicas + 1)
    return [
        Placed(
            "redis",
            i,
            settings.name if i == 0 else f"{settings.name}-{i}",
            settings.volume_name if i == 0 else f"{settings.volume_name}_{i}",
            places[i],
            settings.hosts[places[i]],
            settings.host_port + i,
        )
        for i in range(settings.replicas + 1)
    ]


def sentinels(settings: Settings) -> list[Placed]:
    places = _spread(settings, settings.sentinel_placement, settings.sentinels)
    return [
        Placed(
            "sentinel",
            j,
            f"{settings.name}-sentinel-{j}",
            f"{settings.volume_name}_sentinel_{j}",
            places[j - 1],
            settings.hosts[places[j - 1]],
            settings.sentinel_port + j - 1,
        )
        for j in range(1, settings.sentinels + 1)
    ]


def exporter_port(settings: Settings, placed: Placed) -> int:
    """The port of a node's or Sentinel's exporter on its host: node N's at exporterPort + N,
    Sentinel j's after the nodes' (exporterPort + replicas + j)."""
    if placed.kind == "redis":
        return settings.exporter_port + placed.index
    return settings.exporter_port + settings.replicas + placed.index


def exporter_endpoints(settings: Settings, kind: Kind = "redis") -> list[str]:
    """host:port of each exporter's /metrics: beside the one container on publishAddress,
    or beside each node (`kind` redis) or Sentinel (`kind` sentinel) on its host's address."""
    if not settings.exporter_enabled:
        return []
    if settings.topology != "sentinel":
        return [f"{settings.url_host}:{settings.exporter_port}"] if kind == "redis" else []
    places = nodes(settings) if kind == "redis" else sentinels(settings)
    return [f"{p.host.address}:{exporter_port(settings, p)}" for p in places]


def ports(settings: Settings) -> dict[str, list[int]]:
    """The ports the instance takes on its hosts, by the setting they count up from."""
    if settings.topology != "sentinel":
        return {"hostPort": [settings.host_port], "exporterPort": [settings.exporter_port]}
    places = [*nodes(settings), *sentinels(settings)]
    return {
        "hostPort": [n.port for n in nodes(settings)],
        "sentinelPort": [s.port for s in sentinels(settings)],
        "exporterPort": [exporter_port(settings, p) for p in places],
    }


def sentinel_id(settings: Settings, sentinel: Placed) -> str:
    """A Sentinel's fixed ID: a replaced Sentinel comes back as itself, not as one more
    voter the others would count for ever (Sentinels never forget a peer)."""
    return hashlib.sha1(f"{settings.stack}/{settings.name}/sentinel/{sentinel.index}".encode()).hexdigest()
