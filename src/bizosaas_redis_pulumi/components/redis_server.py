"""RedisServer: one Redis container with its image, network, volume and config, as one
component: the one container of an instance, or one node of its sentinel topology."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_docker as docker

from bizosaas_redis import redis_conf, sentinel_conf, startup
from bizosaas_redis.connection import host_tls
from bizosaas_redis.constants import (
    AUTH_OFF,
    AUTH_ON,
    AUTH_TURNING_ON,
    LABEL_PREFIX,
    REDIS_USER,
    SERVICE_REDIS,
)
from bizosaas_redis.settings import Settings
from bizosaas_redis.topology import Placed
from bizosaas_redis_pulumi.components.exporter import RedisExporter
from bizosaas_redis_pulumi.components.files import files_container, online_files_container, served_by, server_files
from bizosaas_redis_pulumi.components.hardening import (
    hardened_container_args,
    label_args,
    lifecycle_args,
    ownership_labels,
    stack_label,
)
from bizosaas_redis_pulumi.components.online import RedisOnlineSettings, certificates, lower_maxmemory_first

# The type token the deployed stacks' state holds (the component's first name): a new
# token would change the URN of every resource of every stack.
COMPONENT_TYPE = "bizosaas:redis:RedisService"
HOST_NETWORK = "host"


def node_config(settings: Settings, node: Placed | None) -> str:
    """The container's redis.conf without users."""
    return redis_conf.render_config(settings) if node is None else sentinel_conf.render_node_config(settings, node)


def labels(settings: Settings, node: Placed | None = None) -> dict[str, str]:
    """Container labels. The `com.bizosaas.redis.*` ones state the Redis settings in the
    clear (a node's uploaded file is a secret), for the policy pack, reviewers and
    operators. The admin user's name: the online settings are applied as that user, so a
    new one needs a server that starts with it."""
    config_sha = hashlib.sha256(node_config(settings, node).encode()).hexdigest()
    topology = {f"{LABEL_PREFIX}topology": settings.topology}
    if node is not None:
        topology[f"{LABEL_PREFIX}node"] = str(node.index)
    return {
        **topology,
        **policy_labels(settings),
        f"{LABEL_PREFIX}config-sha256": config_sha,
        f"{LABEL_PREFIX}admin-user": settings.admin_username,
        f"{LABEL_PREFIX}flavour": settings.flavour,
        f"{LABEL_PREFIX}licence": settings.licence,
        **settings.labels,
    }


def online_labels(settings: Settings, turning_auth_on: bool = False) -> dict[str, str]:
    """What the policy pack reads on the server's RedisOnlineSettings: its policy labels,
    the container's memory limit (beside maxmemory), and what users.acl holds, set while
    Redis runs: whether a password is required (`turning_auth_on`: authentication is off
    and `rotate start` published a password) and what applications may not run."""
    return {
        **policy_labels(settings),
        f"{LABEL_PREFIX}memory-limit-mb": str(settings.memory_limit_mb),
        f"{LABEL_PREFIX}auth": auth_label(settings.auth_enabled, turning_auth_on),
        f"{LABEL_PREFIX}denied-commands": ",".join(settings.denied_commands),
    }


def policy_labels(settings: Settings) -> dict[str, str]:
    """What the policy pack reads beside the online settings (maxmemory, its policy, `save`),
    on the container and on its RedisOnlineSettings: whose it is, and whether AOF is on.
    The online settings are no labels: a label change would replace the container."""
    return {
        **ownership_labels(settings, SERVICE_REDIS),
        f"{LABEL_PREFIX}appendonly": "yes" if settings.appendonly else "no",
    }


def auth_label(enabled: bool, turning_on: bool) -> str:
    if enabled:
        return AUTH_ON
    return AUTH_TURNING_ON if turning_on else AUTH_OFF


@dataclass(frozen=True)
class Passwords:
    """The instance's passwords: the application's (none without auth), the admin's, the
    exporter's (with the exporter)."""

    app: pulumi.Input[str] | None
    admin: pulumi.Input[str]
    exporter: pulumi.Input[str] | None = None
    # A rotation's previous passwords, still accepted beside the current ones.
    previous_app: pulumi.Input[str] | None = None
    previous_admin: pulumi.Input[str] | None = None
    previous_exporter: pulumi.Input[str] | None = None
    # With authentication off: the password `rotate start` published to the consumers
    # while the server still requires none (turning authentication on).
    published_app: pulumi.Input[str] | None = None

    @property
    def running_admin(self) -> pulumi.Input[str]:
        """The admin password the running servers hold: during an admin rotation the
        previous one (they hold both once `rotate start` set them), else the current one."""
        return self.previous_admin if self.previous_admin is not None else self.admin


@dataclass(frozen=True)
class NodeOf:
    """What makes a RedisServer one node of the sentinel topology."""

    node: Placed
    # Replication and Sentinel passwords (see sentinel_conf): the ones the clients use,
    # and during a rotation another one accepted beside each (sentinel_conf.Accepted).
    replication_password: pulumi.Input[str]
    sentinel_password: pulumi.Input[str]
    discovery: startup.Discovery
    # Runs before the node's container is deleted or replaced: moves the primary role away.
    handover: pulumi.ResourceHook | None = None
    replication_other: pulumi.Input[str] | None = None
    sentinel_other: pulumi.Input[str] | None = None


class RedisServer(pulumi.ComponentResource):
    """Image, network (created or Dokploy's), data volume, config and the hardened Redis
    container, and its exporter when enabled.

    As a node of the sentinel topology (`node_of`), it runs on its host's network, with
    the node's name, volume and port, and replication."""

    container: docker.Container
    volume: docker.Volume
    network_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        settings: Settings,
        passwords: Passwords,
        network_name: pulumi.Input[str] | None = None,
        after: list[pulumi.Resource] | None = None,
        node_of: NodeOf | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        node = node_of.node if node_of else None
        if node is not None:
            # Its own name and volume; hostPort stays the instance's (node 0's, which replicas follow).
            settings = settings.model_copy(
                update={"container_name": node.container_name, "volume_name": node.volume_name}
            )
        self._name, self._settings, self._node_of = name, settings, node_of
        self._node = node  # the node of the sentinel topology this server is, or None
        self._turning_auth_on = passwords.published_app is not None
        # Children inherit the provider (the node's Docker host) from this component.
        image = docker.RemoteImage(
            f"{name}-image", name=settings.image, keep_locally=True, opts=pulumi.ResourceOptions(parent=self)
        )
        self.network_name = self._network(network_name)
        data = self._volumes()
        files = files_container(
            f"{name}-files",
            settings.name,
            settings.stack,
            image.image_id,
            data[0],
            server_files(
                (redis_conf.CONFIG_PATH, self._config()),
                (startup.START_SCRIPT_PATH, startup.render(settings.flavour, node_of.discovery if node_of else None)),
            ),
            # In the same order as the containers: a files container replaced deletes its
            # container first, so it must wait for the containers this one waits for.
            pulumi.ResourceOptions(parent=self, depends_on=after),
        )
        users = self._users(passwords)
        online_files = self._online_files(image.image_id, data[0], users, after)
        lower_first = self._lower_maxmemory_first(passwords.running_admin)
        self.container = self._container(image.image_id, data, files, [online_files, *(after or [])], lower_first)
        self.online = self._online(passwords.running_admin, users, online_files)
        self.exporter = self._exporter(passwords.exporter, image.image_id) if settings.exporter_enabled else None
        self.register_outputs({"container_name": self.container.name})

    def _exporter(self, password: pulumi.Input[str] | None, image_id: pulumi.Input[str]) -> RedisExporter:
        if password is None:
            raise ValueError("the exporter's password is required when exporterEnabled is true")
        return RedisExporter(
            f"{self._name}-exporter",
            self._settings,
            password,
            self.network_name,
            image_id,
            self._node,
            # After its user's passwords are set: a rotation's new one is accepted first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.container, self.online]),
        )

    def _network(self, given: pulumi.Input[str] | None) -> pulumi.Output[str]:
        settings = self._settings
        if self._node_of is not None:
            # The host's network: no port mapping between Sentinel, the node and its clients.
            return pulumi.Output.from_input(HOST_NETWORK)
        if given is not None:
            # The network another instance of the stack created or looked up: one per stack.
            return pulumi.Output.from_input(given)
        if settings.network_external:
            found = docker.get_network_output(name=settings.network_name, opts=pulumi.InvokeOptions(parent=self))
            return found.name
        created = docker.Network(
            f"{self._name}-network",
            name=settings.network_name,
            driver="bridge",
            labels=[docker.NetworkLabelArgs(**stack_label(settings))],
            opts=pulumi.ResourceOptions(parent=self),
        )
        return created.name

    def _volumes(self) -> list[docker.ContainerVolumeArgs]:
        """The data volume (first), and the unix socket's in-memory one when enabled."""
        settings = self._settings
        self.volume = docker.Volume(
            f"{self._name}-data",
            name=settings.volume_name,
            labels=[docker.VolumeLabelArgs(**stack_label(settings))],
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=settings.retain_data_on_destroy),
        )
        volumes = [docker.ContainerVolumeArgs(volume_name=self.volume.name, container_path=redis_conf.DATA_DIR)]
        self.socket_volume: docker.Volume | None = None
        if settings.unix_socket:
            self.socket_volume = docker.Volume(
                f"{self._name}-socket",
                name=settings.socket_volume_name,
                driver="local",
                driver_opts=redis_conf.socket_volume_opts(),
                labels=[docker.VolumeLabelArgs(**stack_label(settings))],
                opts=pulumi.ResourceOptions(parent=self),
            )
            volumes.append(
                docker.ContainerVolumeArgs(volume_name=self.socket_volume.name, container_path=redis_conf.SOCKET_DIR)
            )
        return volumes

    def _config(self) -> pulumi.Input[str]:
        """redis.conf: the instance's (no secret), or the node's with its replication
        password (a secret)."""
        settings, node_of = self._settings, self._node_of
        if node_of is None:
            return redis_conf.render_config(settings)
        node = node_of.node
        return pulumi.Output.secret(
            pulumi.Output.from_input(node_of.replication_password).apply(
                lambda password: sentinel_conf.render_node(settings, node, password)
            )
        )

    def _users(self, passwords: Passwords) -> pulumi.Output[str]:
        """users.acl (a secret): the instance's users, or the node's with the topology's."""
        settings, node_of = self._settings, self._node_of
        previous = pulumi.Output.all(passwords.previous_app, passwords.previous_admin, passwords.previous_exporter)
        if node_of is None:
            return pulumi.Output.secret(
                pulumi.Output.all(passwords.app, passwords.admin, passwords.exporter, previous).apply(
                    lambda pw: redis_conf.render_users(settings, pw[0], pw[1], pw[2], redis_conf.Previous(*pw[3]))
                )
            )
        return pulumi.Output.secret(
            pulumi.Output.all(
                passwords.app,
                passwords.admin,
                passwords.exporter,
                node_of.replication_password,
                node_of.sentinel_password,
                previous,
                node_of.replication_other,
                node_of.sentinel_other,
            ).apply(
                lambda pw: sentinel_conf.render_node_users(
                    settings,
                    (pw[0], pw[1], pw[2], sentinel_conf.Accepted(pw[3], pw[6]), sentinel_conf.Accepted(pw[4], pw[7])),
                    redis_conf.Previous(*pw[5]),
                )
            )
        )

    def _online_files(
        self,
        image_id: pulumi.Input[str],
        data: docker.ContainerVolumeArgs,
        users: pulumi.Output[str],
        after: list[pulumi.Resource] | None,
    ) -> docker.Container:
        """The files container of online.conf and users.acl: replaced on a change of them,
        the server is not."""
        settings = self._settings
        return online_files_container(
            f"{self._name}-online-files",
            settings.name,
            settings.stack,
            image_id,
            data,
            redis_conf.render_online(settings, self._node),
            users,
            pulumi.ResourceOptions(parent=self, depends_on=after),
        )

    def _reach(self) -> tuple[str, dict[str, object]]:
        """Where the program reaches the running server: `host:port`, and TLS arguments."""
        settings, node_of = self._settings, self._node_of
        if node_of is None:
            endpoint = f"{settings.url_host}:{settings.host_port}"
        else:
            endpoint = f"{node_of.node.host.address}:{node_of.node.port}"
        tls = host_tls(settings.model_dump(by_alias=True))
        return endpoint, {"ssl": True, **tls} if tls else {}

    def _lower_maxmemory_first(self, admin_password: pulumi.Input[str]) -> pulumi.ResourceHook:
        settings = self._settings
        endpoint, tls = self._reach()
        props = {"endpoints": [endpoint], "username": settings.admin_username, "password": admin_password, "tls": tls}
        return lower_maxmemory_first(self._name, settings.name, props, settings.maxmemory)

    def _online(
        self, admin_password: pulumi.Input[str], users: pulumi.Output[str], online_files: docker.Container
    ) -> RedisOnlineSettings:
        """Sets the online settings and users on the running server, after its online.conf
        and users.acl are written."""
        settings = self._settings
        endpoint, tls = self._reach()
        directives = redis_conf.online_config(settings, self._node)
        fingerprint = ""
        if settings.tls_enabled and settings.tls_certs_dir:
            directives |= redis_conf.TLS_FILES  # set again: Redis reads the files again
            fingerprint = certificates(settings.tls_certs_dir)
        return RedisOnlineSettings(
            f"{self._name}-online",
            [endpoint],
            directives,
            users,
            (settings.admin_username, admin_password),
            tls,
            pulumi.ResourceOptions(parent=self, depends_on=[online_files, self.container]),
            certificates=fingerprint,
            labels=online_labels(settings, self._turning_auth_on),
        )

    def _placement(self) -> dict[str, Any]:
        """A node on its host's network; the one container on the stack's, its port published."""
        settings = self._settings
        if self._node_of is not None:
            return {"network_mode": HOST_NETWORK}
        port = docker.ContainerPortArgs(
            internal=redis_conf.CONTAINER_PORT, external=settings.host_port, ip=settings.publish_address, protocol="tcp"
        )
        network = docker.ContainerNetworksAdvancedArgs(name=self.network_name, aliases=settings.network_aliases)
        return {"ports": [port], "networks_advanced": [network]}

    def _container(
        self,
        image_id: pulumi.Input[str],
        volumes: list[docker.ContainerVolumeArgs],
        files: docker.Container,
        after: list[pulumi.Resource] | None,
        lower_first: pulumi.ResourceHook,
    ) -> docker.Container:
        settings, node_of, node = self._settings, self._node_of, self._node
        mounts = []
        if settings.tls_enabled:
            mounts.append(
                docker.ContainerMountArgs(
                    type="bind", source=settings.tls_certs_dir, target=redis_conf.TLS_DIR, read_only=True
                )
            )
        handover = node_of.handover if node_of is not None else None
        return docker.Container(
            f"{self._name}-container",
            name=settings.name,
            image=image_id,
            command=startup.COMMAND,
            user=REDIS_USER,
            **self._placement(),
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
                pulumi.ResourceHookBinding(
                    before_update=[lower_first], before_delete=[handover] if handover is not None else None
                ),
            ),
        )
