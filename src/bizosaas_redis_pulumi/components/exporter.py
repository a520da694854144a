"""RedisExporter: redis_exporter beside Redis, for Prometheus."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_docker as docker

from bizosaas_redis import redis_conf, topology
from bizosaas_redis.constants import EXPORTER_PORT, EXPORTER_UID, REDIS_GID, SERVICE_EXPORTER
from bizosaas_redis.settings import Settings
from bizosaas_redis.topology import Placed
from bizosaas_redis_pulumi.components.files import File, files_container, served_by
from bizosaas_redis_pulumi.components.hardening import (
    hardened_container_args,
    label_args,
    ownership_labels,
    stack_label,
)

COMPONENT_TYPE = "bizosaas:redis:RedisExporter"
EXPORTER_USER = f"{EXPORTER_UID}:{EXPORTER_UID}"
# The password file lives on the exporter's small volume.
EXPORTER_SECRETS_DIR = "/secrets"
EXPORTER_MEMORY_MB = 64


def exporter_address(settings: Settings, node: Placed | None = None) -> str:
    """Redis as the exporter reaches it: by container name on the stack's network, over
    TLS when Redis serves only TLS (the certificate must name the container); a node or
    Sentinel of the sentinel topology on loopback, both on its host's network."""
    if node is not None:
        return f"redis://127.0.0.1:{node.port}"
    scheme = "rediss" if settings.tls_enabled else "redis"
    return f"{scheme}://{settings.name}:{redis_conf.CONTAINER_PORT}"


def exporter_env(settings: Settings, node: Placed | None = None) -> list[str]:
    """redis_exporter's settings (its environment variables): no secret among them."""
    env = [
        f"REDIS_ADDR={exporter_address(settings, node)}",
        f"REDIS_USER={redis_conf.EXPORTER_USER}",
        f"REDIS_PASSWORD_FILE={EXPORTER_SECRETS_DIR}/password.json",
    ]
    if node is not None:
        # On the host's network: its own port on the host's address, as the node has.
        listen = f"{node.host.address}:{topology.exporter_port(settings, node)}"
        env.append(f"REDIS_EXPORTER_WEB_LISTEN_ADDRESS={listen}")
    if settings.tls_enabled:
        env.append(f"REDIS_EXPORTER_TLS_CA_CERT_FILE={redis_conf.TLS_DIR}/ca.crt")
    return env


def _placement(settings: Settings, network_name: pulumi.Input[str], node: Placed | None) -> dict[str, Any]:
    if node is not None:
        return {"network_mode": "host"}
    return {
        "ports": [
            docker.ContainerPortArgs(
                internal=EXPORTER_PORT, external=settings.exporter_port, ip=settings.publish_address, protocol="tcp"
            )
        ],
        "networks_advanced": [docker.ContainerNetworksAdvancedArgs(name=network_name)],
    }


def _tls_access(settings: Settings) -> dict[str, Any]:
    """With TLS, the certificates' folder read-only, and Redis's group, which reads the CA
    file as Redis's own files are owned (999:1000)."""
    if not settings.tls_enabled:
        return {}
    mount = docker.ContainerMountArgs(
        type="bind", source=settings.tls_certs_dir, target=redis_conf.TLS_DIR, read_only=True
    )
    return {"mounts": [mount], "group_adds": [str(REDIS_GID)]}


class RedisExporter(pulumi.ComponentResource):
    """The exporter container, reading its password from a file on its own volume
    (a plain environment variable would show in `docker inspect`). `files_image`: the
    image of the container that writes that file (Redis's: it names no user). `node`:
    the node or Sentinel of the sentinel topology it watches, on that one's host (a
    Sentinel's exporter reports what it sees: its peers, the replicas, its quorum)."""

    container: docker.Container

    def __init__(
        self,
        name: str,
        settings: Settings,
        password: pulumi.Input[str],
        network_name: pulumi.Input[str],
        files_image: pulumi.Input[str],
        node: Placed | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        # These resources were children of RedisServer before this component existed.
        moved = pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(parent=opts.parent if opts else None)])
        image = docker.RemoteImage(f"{name}-image", name=settings.exporter_image, keep_locally=True, opts=moved)
        secrets_volume = docker.Volume(
            f"{name}-secrets",
            name=f"{settings.volume_name}_exporter",
            labels=[docker.VolumeLabelArgs(**stack_label(settings))],
            opts=moved,
        )
        address = exporter_address(settings, node)
        password_file: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.from_input(password).apply(lambda pw: json.dumps({address: pw}))
        )
        secrets = docker.ContainerVolumeArgs(
            volume_name=secrets_volume.name, container_path=EXPORTER_SECRETS_DIR, read_only=False
        )
        container_name = f"{settings.name}-exporter"
        files = files_container(
            f"{name}-files",
            container_name,
            settings.stack,
            files_image,
            secrets,
            [File(f"{EXPORTER_SECRETS_DIR}/password.json", password_file, "0400", EXPORTER_UID, EXPORTER_UID)],
            moved,
        )
        self.container = docker.Container(
            name,
            name=container_name,
            image=image.image_id,
            envs=exporter_env(settings, node),
            user=EXPORTER_USER,
            **_tls_access(settings),
            **_placement(settings, network_name, node),
            volumes=[secrets],
            labels=label_args(ownership_labels(settings, SERVICE_EXPORTER)),
            **hardened_container_args(settings, EXPORTER_MEMORY_MB),
            opts=pulumi.ResourceOptions.merge(moved, served_by(files, None, self)),
        )
        self.register_outputs({"container_name": self.container.name})
