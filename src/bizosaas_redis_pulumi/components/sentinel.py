"""RedisSentinel: one Redis Sentinel of the sentinel topology, hardened as the nodes are."""

from __future__ import annotations

import hashlib

import pulumi
import pulumi_docker as docker

from bizosaas_redis import redis_conf, sentinel_conf, startup
from bizosaas_redis.constants import LABEL_PREFIX, REDIS_USER, SERVICE_SENTINEL
from bizosaas_redis.settings import Settings
from bizosaas_redis.topology import Placed, master_name
from bizosaas_redis_pulumi.components.exporter import RedisExporter
from bizosaas_redis_pulumi.components.files import files_container, online_files_container, served_by, server_files
from bizosaas_redis_pulumi.components.hardening import (
    hardened_container_args,
    label_args,
    lifecycle_args,
    ownership_labels,
    stack_label,
)
from bizosaas_redis_pulumi.components.online import RedisOnlineSettings
from bizosaas_redis_pulumi.components.redis_server import HOST_NETWORK, Passwords

COMPONENT_TYPE = "bizosaas:redis:RedisSentinel"
# Sentinel holds a few kilobytes of state; the limit only bounds a runaway.
SENTINEL_MEMORY_MB = 64


def sentinel_labels(settings: Settings, sentinel: Placed) -> dict[str, str]:
    config_sha = hashlib.sha256(sentinel_conf.render_sentinel_config(settings, sentinel).encode()).hexdigest()
    return {
        **ownership_labels(settings, SERVICE_SENTINEL),
        f"{LABEL_PREFIX}config-sha256": config_sha,
        f"{LABEL_PREFIX}topology": settings.topology,
        f"{LABEL_PREFIX}sentinel": str(sentinel.index),
        # For the policy pack: how many Sentinels must agree that the primary is down.
        f"{LABEL_PREFIX}quorum": str(settings.sentinel_quorum),
        **settings.labels,
    }


def _config(settings: Settings, sentinel: Placed, sentinel_password: pulumi.Input[str]) -> pulumi.Output[str]:
    """sentinel.conf with the password it authenticates upstream with: a secret."""
    return pulumi.Output.secret(
        pulumi.Output.from_input(sentinel_password).apply(
            lambda password: (
                sentinel_conf.render_sentinel_config(settings, sentinel)
                + sentinel_conf.render_sentinel_secrets(settings, password)
            )
        )
    )


def _users(
    settings: Settings,
    passwords: Passwords,
    sentinel_password: pulumi.Input[str],
    sentinel_other: pulumi.Input[str] | None,
) -> pulumi.Output[str]:
    """The Sentinel's users.acl: a secret. `sentinel_other`: during a rotation of the
    Sentinel password, the one accepted beside it (sentinel_conf.Accepted)."""
    return pulumi.Output.secret(
        pulumi.Output.all(
            passwords.app,
            passwords.admin,
            sentinel_password,
            passwords.exporter,
            passwords.previous_app,
            passwords.previous_admin,
            passwords.previous_exporter,
            sentinel_other,
        ).apply(
            lambda pw: sentinel_conf.render_sentinel_users(
                settings,
                pw[0],
                pw[1],
                sentinel_conf.Accepted(pw[2], pw[7]),
                pw[3],
                redis_conf.Previous(pw[4], pw[5], pw[6]),
            )
        )
    )


class RedisSentinel(pulumi.ComponentResource):
    """Image, a small volume for the file Sentinel rewrites, and the Sentinel container on
    its host's network; its exporter beside it when enabled."""

    container: docker.Container

    def __init__(
        self,
        name: str,
        settings: Settings,
        sentinel: Placed,
        passwords: Passwords,
        sentinel_password: pulumi.Input[str],
        discovery: startup.Discovery,
        after: list[pulumi.Resource] | None = None,
        opts: pulumi.ResourceOptions | None = None,
        sentinel_other: pulumi.Input[str] | None = None,
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        image = docker.RemoteImage(f"{name}-image", name=settings.image, keep_locally=True, opts=child)
        volume = docker.Volume(
            f"{name}-data",
            name=sentinel.volume_name,
            labels=[docker.VolumeLabelArgs(**stack_label(settings))],
            opts=child,
        )
        data = docker.ContainerVolumeArgs(volume_name=volume.name, container_path=redis_conf.DATA_DIR)
        conf = _config(settings, sentinel, sentinel_password)
        users = _users(settings, passwords, sentinel_password, sentinel_other)
        files, online_files = self._files(name, settings, sentinel, (conf, users), discovery, image, data, after)
        self.container = docker.Container(
            f"{name}-container",
            name=sentinel.container_name,
            image=image.image_id,
            command=startup.SENTINEL_COMMAND,
            user=REDIS_USER,
            network_mode=HOST_NETWORK,
            volumes=[data],
            tmpfs={"/tmp": "rw,noexec,nosuid,size=16m"},
            labels=label_args(sentinel_labels(settings, sentinel)),
            **lifecycle_args(settings, redis_conf.healthcheck_command(settings, sentinel.port)),
            **hardened_container_args(settings, SENTINEL_MEMORY_MB),
            opts=served_by(files, [online_files, *(after or [])], self),
        )
        self.online = RedisOnlineSettings(
            f"{name}-online",
            [sentinel.endpoint],
            sentinel_conf.sentinel_online_config(settings),
            users,
            (settings.admin_username, passwords.running_admin),
            {},  # the sentinel topology has no TLS (settings.high_availability)
            pulumi.ResourceOptions(parent=self, depends_on=[online_files, self.container]),
            master=master_name(settings),
        )
        if settings.exporter_enabled:
            self._exporter(name, settings, sentinel, passwords, image.image_id)
        self.register_outputs({"container_name": self.container.name})

    def _files(
        self,
        name: str,
        settings: Settings,
        sentinel: Placed,
        files_text: tuple[pulumi.Output[str], pulumi.Output[str]],
        discovery: startup.Discovery,
        image: docker.RemoteImage,
        data: docker.ContainerVolumeArgs,
        after: list[pulumi.Resource] | None,
    ) -> tuple[docker.Container, docker.Container]:
        """The files containers: sentinel.conf and the start script (new ones replace the
        Sentinel), and online.conf and users.acl (`files_text`: sentinel.conf and users.acl),
        what Sentinel applies while it runs (new ones replace nothing: `online` sets them on
        the running Sentinel)."""
        conf, users = files_text
        # In the same order as the containers: a files container replaced deletes its
        # container first, so it must wait for the containers this one waits for.
        opts = pulumi.ResourceOptions(parent=self, depends_on=after)
        script = startup.render_sentinel(settings.flavour, discovery, settings.sentinel_quorum)
        files = files_container(
            f"{name}-files",
            sentinel.container_name,
            settings.stack,
            image.image_id,
            data,
            server_files((startup.SENTINEL_CONFIG_PATH, conf), (startup.SENTINEL_SCRIPT_PATH, script)),
            opts,
        )
        online_files = online_files_container(
            f"{name}-online-files",
            sentinel.container_name,
            settings.stack,
            image.image_id,
            data,
            sentinel_conf.render_sentinel_online(settings),
            users,
            opts,
        )
        return files, online_files

    def _exporter(
        self, name: str, settings: Settings, sentinel: Placed, passwords: Passwords, image: pulumi.Input[str]
    ) -> RedisExporter:
        """redis_exporter beside the Sentinel, named after it (its container and volume)."""
        if passwords.exporter is None:
            raise ValueError("the exporter's password is required when exporterEnabled is true")
        return RedisExporter(
            f"{name}-exporter",
            settings.model_copy(
                update={"container_name": sentinel.container_name, "volume_name": sentinel.volume_name}
            ),
            passwords.exporter,
            HOST_NETWORK,
            image,
            sentinel,
            # After its user's passwords are set (see RedisServer's exporter).
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.container, self.online]),
        )
