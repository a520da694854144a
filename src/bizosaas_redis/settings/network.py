"""Network and storage: the published port, the Docker network, the unix socket, the volume."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import BaseModel, Field, field_validator

from bizosaas_redis.settings.values import MODEL_CONFIG, DockerName, JsonList, Port


class NetworkSettings(BaseModel):
    model_config = MODEL_CONFIG

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
    network_aliases: Annotated[list[DockerName], JsonList] = Field(
        default_factory=lambda: ["redis"],
        description="DNS aliases of the container on the network.",
    )
    unix_socket: bool = Field(
        False,
        description="Also listen on a unix socket in a volume of its own (`<container>-socket`, in memory) that "
        "co-located consumer containers mount, running with group 1000: faster than the published port, "
        "which Docker's userland proxy slows (docs/measurements/performance.md).",
    )
    volume_name: DockerName = Field("redis_data", description="Named volume mounted at /data (RDB, AOF, redis.conf).")
    retain_data_on_destroy: bool = Field(True, description="Keep the data volume when the stack is destroyed.")

    @field_validator("publish_address")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("must be an IP address such as 127.0.0.1 or 0.0.0.0") from None
        return value

    @property
    def url_host(self) -> str:
        if self.advertised_host:
            return self.advertised_host
        if ipaddress.ip_address(self.publish_address).is_unspecified:
            return "127.0.0.1"
        return self.publish_address
