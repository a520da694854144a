"""RedisService: the Redis container with its image, network and volume, as one component."""

from __future__ import annotations

import hashlib

import pulumi
import pulumi_docker as docker

from .. import redis_conf, startup
from ..constants import LABEL_PREFIX, REDIS_GID, REDIS_UID, REDIS_USER, SERVICE_REDIS
from ..settings import Settings
from .exporter import RedisExporter
from .hardening import hardened_container_args, label_args, ownership_labels, stack_label

COMPONENT_TYPE = "bizosaas:redis:RedisService"


def labels(settings: Settings) -> dict[str, str]:
    """Container labels. The `com.bizosaas.redis.*` ones state the Redis settings in the
    clear (the uploaded file is a secret), for the policy pack, reviewers and operators."""
    config_sha = hashlib.sha256(redis_conf.render_config(settings).encode()).hexdigest()
    return {
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


class RedisService(pulumi.ComponentResource):
    """Image, network (created or Dokploy's), data volume and the hardened Redis container."""

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
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        image = docker.RemoteImage(f"{name}-image", name=settings.image, keep_locally=True, opts=child)

        if network_name is not None:
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

        volumes = [docker.ContainerVolumeArgs(volume_name=self.volume.name, container_path=redis_conf.DATA_DIR)]
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

        conf: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(app_password, admin_password, exporter_password).apply(
                lambda pw: redis_conf.render(settings, pw[0], pw[1], pw[2])
            )
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
            ports=[
                docker.ContainerPortArgs(
                    internal=redis_conf.CONTAINER_PORT,
                    external=settings.host_port,
                    ip=settings.publish_address,
                    protocol="tcp",
                )
            ],
            networks_advanced=[
                docker.ContainerNetworksAdvancedArgs(name=self.network_name, aliases=settings.network_aliases)
            ],
            volumes=volumes,
            mounts=mounts or None,
            # redis-cli and the shell need a writable /tmp; everything else is read-only.
            tmpfs={"/tmp": "rw,noexec,nosuid,size=64m"},
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=redis_conf.healthcheck_command(settings),
                interval=f"{settings.healthcheck_interval}s",
                timeout=f"{settings.healthcheck_timeout}s",
                retries=settings.healthcheck_retries,
                start_period=f"{settings.healthcheck_start_period}s",
            ),
            # `pulumi up` returns only once the healthcheck passes.
            wait=True,
            wait_timeout=settings.healthcheck_start_period
            + settings.healthcheck_interval * (settings.healthcheck_retries + 1),
            labels=label_args(labels(settings)),
            # Uploads must land on a writable mount: /data is the volume.
            uploads=[
                docker.ContainerUploadArgs(
                    file=redis_conf.CONFIG_PATH,
                    content=conf,
                    owner=str(REDIS_UID),
                    group=str(REDIS_GID),
                    permissions="0600",
                ),
                docker.ContainerUploadArgs(
                    file=startup.START_SCRIPT_PATH,
                    content=startup.render(settings.flavour),
                    owner=str(REDIS_UID),
                    group=str(REDIS_GID),
                    permissions="0500",
                ),
            ],
            # Redis writes its snapshot on SIGTERM; give it time before SIGKILL: docker stop
            # uses stop_timeout, the provider's delete and replace destroy_grace_seconds.
            stop_signal="SIGTERM",
            stop_timeout=settings.stop_grace_period,
            destroy_grace_seconds=settings.stop_grace_period,
            must_run=True,
            **hardened_container_args(settings, settings.memory_limit_mb),
            opts=pulumi.ResourceOptions(
                parent=self,
                # Another instance's container, created (and healthy: wait) before this one is
                # created or replaced, so that a change to both takes them down one at a time.
                depends_on=after,
                # The name is fixed, so the old container must go before the new one.
                delete_before_replace=True,
                # The provider ignores edits of these after creation: force a new container.
                replace_on_changes=["healthcheck", "tmpfs"],
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
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.container]),
            )

        self.register_outputs({"container_name": self.container.name})
