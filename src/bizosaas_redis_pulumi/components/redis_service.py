"""RedisService: the Redis container with its image, network and volume, as one component:
the one container of an instance, or one node of its sentinel topology."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_docker as docker

from bizosaas_redis import redis_conf, sentinel_conf, startup
from bizosaas_redis.constants import LABEL_PREFIX, REDIS_GID, REDIS_UID, REDIS_USER, SERVICE_REDIS
from bizosaas_redis.settings import Settings
from bizosaas_redis.topology import Placed
from bizosaas_redis_pulumi.components.exporter import RedisExporter
from bizosaas_redis_pulumi.components.files import files_container, served_by, server_files
from bizosaas_redis_pulumi.components.hardening import (
    hardened_container_args,
    label_args,
    lifecycle_args,
    ownership_labels,
    stack_label,
)

COMPONENT_TYPE = "bizosaas:redis:RedisService"
HOST_NETWORK = "host"


def node_config(settings: Settings, node: Placed | None) -> str:
    """The container's redis.conf without users."""
    return redis_conf.render_config(settings) if node is None else sentinel_conf.render_node_config(settings, node)


def labels(settings: Settings, node: Placed | None = None) -> dict[str, str]:
    """Container labels. The `com.bizosaas.redis.*` ones state the Redis settings in the
    clear (the uploaded file is a secret), for the policy pack, reviewers and operators."""
    config_sha = hashlib.sha256(node_config(settings, node).encode()).hexdigest()
    topology = {f"{LABEL_PREFIX}topology": settings.topology}
    if node is not None:
        topology[f"{LABEL_PREFIX}node"] = str(node.index)
    return {
        **topology,
        **ownership_labels(settings, SERVICE_REDIS),
        f"{LABEL_PREFIX}config-sha256": config_sha,
        f"{LABEL_PREFIX}maxmemory": str(settings.maxmemory),
        f"{LABEL_PREFIX}maxmemory-policy": settings.maxmemory_policy,
        f"{LABEL_PREFIX}auth": "on" if settings.auth_enabled else "off",
        f"{LABEL_PREFIX}appendonly": "yes" if settings.appendonly else "no",
        f"{LABEL_PREFIX}flavour": settings.flavour,
        f"{LABEL_PREFIX}licence": settings.licence,
        f"{LABEL_PREFIX}save": " ".join(str(rule) for rule in settings.save),
        f"{LABEL_PREFIX}denied-commands": ",".join(settings.denied_commands),
        **settings.labels,
    }


@dataclass(frozen=True)
class NodeOf:
    """What makes a RedisService one node of the sentinel topology."""

    node: Placed
    # Replication and Sentinel passwords (see sentinel_conf).
    replication_password: pulumi.Input[str]
    sentinel_password: pulumi.Input[str]
    discovery: startup.Discovery
    # Runs before the node's container is deleted or replaced: moves the primary role away.
    handover: pulumi.ResourceHook | None = None


class RedisService(pulumi.ComponentResource):
    """Image, network (created or Dokploy's), data volume and the hardened Redis container.

    As a node of the sentinel topology (`node_of`), it runs on its host's network, with
    the node's name, volume and port, and replication."""

    container: docker.Container
    volume: docker.Volume
    network_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        settings: Settings,
        app_password: pulumi.Input[str] | None,
        admin_password: pulumi.Input[str],
        exporter_password: pulumi.Input[str] | None = None,
        network_name: pulumi.Input[str] | None = None,
        after: list[pulumi.Resource] | None = None,
        node_of: NodeOf | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        # Children inherit the provider (the node's Docker host) from this component.
        child = pulumi.ResourceOptions(parent=self)
        node = node_of.node if node_of else None
        if node is not None:
            # Its own name and volume; hostPort stays the instance's (node 0's, which replicas follow).
            settings = settings.model_copy(
                update={"container_name": node.container_name, "volume_name": node.volume_name}
            )

        image = docker.RemoteImage(f"{name}-image", name=settings.image, keep_locally=True, opts=child)

        if node is not None:
            # The host's network: no port mapping between Sentinel, the node and its clients.
            self.network_name = pulumi.Output.from_input(HOST_NETWORK)
        elif network_name is not None:
            # The network another instance of the stack created or looked up: one per stack.
            self.network_name = pulumi.Output.from_input(network_name)
        elif settings.network_external:
            network = docker.get_network_output(name=settings.network_name, opts=pulumi.InvokeOptions(parent=self))
            self.network_name = network.name
        else:
            created = docker.Network(
                f"{name}-network",
                name=settings.network_name,
                driver="bridge",
                labels=[docker.NetworkLabelArgs(**stack_label(settings))],
                opts=child,
            )
            self.network_name = created.name

        self.volume = docker.Volume(
            f"{name}-data",
            name=settings.volume_name,
            labels=[docker.VolumeLabelArgs(**stack_label(settings))],
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=settings.retain_data_on_destroy),
        )

        data = docker.ContainerVolumeArgs(volume_name=self.volume.name, container_path=redis_conf.DATA_DIR)
        volumes = [data]
        self.socket_volume: docker.Volume | None = None
        if settings.unix_socket:
            # In memory, owned by Redis's user and group: a socket needs no disk, and
            # consumers that mount the volume connect when they run with the group.
            self.socket_volume = docker.Volume(
                f"{name}-socket",
                name=settings.socket_volume_name,
                driver="local",
                driver_opts={
                    "type": "tmpfs",
                    "device": "tmpfs",
                    "o": f"uid={REDIS_UID},gid={REDIS_GID},mode=0{redis_conf.SOCKET_PERM},size=1m",
                },
                labels=[docker.VolumeLabelArgs(**stack_label(settings))],
                opts=child,
            )
            volumes.append(
                docker.ContainerVolumeArgs(volume_name=self.socket_volume.name, container_path=redis_conf.SOCKET_DIR)
            )

        if node_of is None:
            conf: pulumi.Output[str] = pulumi.Output.secret(
                pulumi.Output.all(app_password, admin_password, exporter_password).apply(
                    lambda pw: redis_conf.render(settings, pw[0], pw[1], pw[2])
                )
            )
        else:
            conf = pulumi.Output.secret(
                pulumi.Output.all(
                    app_password,
                    admin_password,
                    exporter_password,
                    node_of.replication_password,
                    node_of.sentinel_password,
                ).apply(
                    lambda pw: sentinel_conf.render_node(settings, node_of.node, (pw[0], pw[1], pw[2], pw[3], pw[4]))
                )
            )
        placement: dict[str, Any] = (
            {"network_mode": HOST_NETWORK}
            if node is not None
            else {
                "ports": [
                    docker.ContainerPortArgs(
                        internal=redis_conf.CONTAINER_PORT,
                        external=settings.host_port,
                        ip=settings.publish_address,
                        protocol="tcp",
                    )
                ],
                "networks_advanced": [
                    docker.ContainerNetworksAdvancedArgs(name=self.network_name, aliases=settings.network_aliases)
                ],
            }
        )
        files = files_container(
            f"{name}-files",
            settings.name,
            settings.stack,
            image.image_id,
            data,
            server_files(
                (redis_conf.CONFIG_PATH, conf),
                (startup.START_SCRIPT_PATH, startup.render(settings.flavour, node_of.discovery if node_of else None)),
            ),
            # In the same order as the containers: a files container replaced deletes its
            # container first, so it must wait for the containers this one waits for.
            pulumi.ResourceOptions(parent=self, depends_on=after),
        )
        mounts = []
        if settings.tls_enabled:
            mounts.append(
                docker.ContainerMountArgs(
                    type="bind", source=settings.tls_certs_dir, target=redis_conf.TLS_DIR, read_only=True
                )
            )

        self.container = docker.Container(
            f"{name}-container",
            name=settings.name,
            image=image.image_id,
            command=startup.COMMAND,
            user=REDIS_USER,
            **placement,
            volumes=volumes,
            mounts=mounts or None,
            # redis-cli and the shell need a writable /tmp; everything else is read-only.
            tmpfs={"/tmp": "rw,noexec,nosuid,size=64m"},
            labels=label_args(labels(settings, node)),
            **lifecycle_args(settings, redis_conf.healthcheck_command(settings, node.port if node else None)),
            **hardened_container_args(settings, settings.memory_limit_mb),
            opts=served_by(
                files,
                after,
                self,
                pulumi.ResourceHookBinding(before_delete=[node_of.handover])
                if node_of is not None and node_of.handover is not None
                else None,
            ),
        )

        self.exporter: RedisExporter | None = None
        if settings.exporter_enabled:
            if exporter_password is None:
                raise ValueError("exporter_password is required when exporterEnabled is true")
            self.exporter = RedisExporter(
                f"{name}-exporter",
                settings,
                exporter_password,
                self.network_name,
                image.image_id,
                node,
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.container]),
            )

        self.register_outputs({"container_name": self.container.name})
