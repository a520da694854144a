"""RedisService: the Redis container with its image, network and volume, as one component."""

from __future__ import annotations

import hashlib
import json
from urllib.parse import quote

import pulumi
import pulumi_docker as docker

from . import redis_conf
from .settings import Settings

# The official image's `redis` user: its entrypoint then starts Redis directly, with no
# chown and no privilege drop, so the container needs no capability at all.
RUN_AS = "999:1000"
COMPONENT_TYPE = "bizosaas:redis:RedisService"
# The redis_exporter image's own user; the password file lives on its small volume.
EXPORTER_USER_ID = "59000:59000"
EXPORTER_SECRETS_DIR = "/secrets"


LABEL_PREFIX = "com.bizosaas.redis."


def labels(settings: Settings) -> dict[str, str]:
    """Container labels. The `com.bizosaas.redis.*` ones state the Redis settings in the
    clear (the uploaded file is a secret), for the policy pack, reviewers and operators."""
    config_sha = hashlib.sha256(redis_conf.render_config(settings).encode()).hexdigest()
    return {
        "com.bizosaas.service": "redis",
        "com.bizosaas.stack": settings.stack,
        "com.bizosaas.environment": settings.environment,
        f"{LABEL_PREFIX}config-sha256": config_sha,
        f"{LABEL_PREFIX}maxmemory": str(settings.maxmemory),
        f"{LABEL_PREFIX}maxmemory-policy": settings.maxmemory_policy,
        f"{LABEL_PREFIX}auth": "on" if settings.auth_enabled else "off",
        f"{LABEL_PREFIX}appendonly": "yes" if settings.appendonly else "no",
        f"{LABEL_PREFIX}save": " ".join(str(rule) for rule in settings.save),
        f"{LABEL_PREFIX}denied-commands": ",".join(settings.denied_commands),
        **settings.labels,
    }


def redis_url(settings: Settings, username: str | None, password: str | None, db: int) -> str:
    """`redis[s]://[user:password@]host:port/db` reaching the published port."""
    scheme = "rediss" if settings.tls_enabled else "redis"
    auth = f"{quote(username or 'default', safe='')}:{quote(password, safe='')}@" if password else ""
    return f"{scheme}://{auth}{settings.url_host}:{settings.host_port}/{db}"


def consumer_env(settings: Settings) -> dict[str, str]:
    """What a service on the network puts in its .env (the password is a separate secret)."""
    return {
        "REDIS_HOST": settings.name,
        "REDIS_PORT": str(redis_conf.CONTAINER_PORT),
        "REDIS_USERNAME": settings.app_username,
        "REDIS_DB": str(settings.cache_db),
        "REDIS_SSL": "true" if settings.tls_enabled else "false",
        "REDIS_CACHE_TTL": str(settings.cache_ttl),
        "REDIS_SESSION_TTL": str(settings.session_ttl),
        "REDIS_STREAM_MAXLEN": str(settings.stream_maxlen),
        "CELERY_BROKER_DB": str(settings.celery_broker_db),
        "CELERY_RESULT_DB": str(settings.celery_result_db),
        "REDIS_MAX_CONNECTIONS": str(settings.maxclients),
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
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        image = docker.RemoteImage(f"{name}-image", name=settings.image, keep_locally=True, opts=child)

        if settings.network_external:
            network = docker.get_network_output(name=settings.network_name, opts=pulumi.InvokeOptions(parent=self))
            self.network_name = network.name
        else:
            created = docker.Network(
                f"{name}-network",
                name=settings.network_name,
                driver="bridge",
                labels=[docker.NetworkLabelArgs(label="com.bizosaas.stack", value=settings.stack)],
                opts=child,
            )
            self.network_name = created.name

        self.volume = docker.Volume(
            f"{name}-data",
            name=settings.volume_name,
            labels=[docker.VolumeLabelArgs(label="com.bizosaas.stack", value=settings.stack)],
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=settings.retain_data_on_destroy),
        )

        conf = pulumi.Output.secret(
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
            command=["redis-server", redis_conf.CONFIG_PATH],
            user=RUN_AS,
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
            volumes=[docker.ContainerVolumeArgs(volume_name=self.volume.name, container_path=redis_conf.DATA_DIR)],
            mounts=mounts or None,
            # redis-cli and the shell need a writable /tmp; everything else is read-only.
            tmpfs={"/tmp": "rw,noexec,nosuid,size=64m"},
            read_only=True,
            capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
            security_opts=["no-new-privileges:true"],
            memory=settings.memory_limit_mb,
            # No swap: a swapping cache is slower than a cache miss.
            memory_swap=settings.memory_limit_mb,
            restart=settings.restart_policy,
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
            labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in labels(settings).items()],
            log_driver="json-file",
            log_opts={"max-size": settings.log_max_size, "max-file": str(settings.log_max_files)},
            # Uploads must land on a writable mount: /data is the volume.
            uploads=[
                docker.ContainerUploadArgs(
                    file=redis_conf.CONFIG_PATH,
                    content=conf,
                    owner=RUN_AS.split(":")[0],
                    group=RUN_AS.split(":")[1],
                    permissions="0600",
                )
            ],
            # Redis writes its RDB on SIGTERM; give it time before SIGKILL.
            stop_signal="SIGTERM",
            stop_timeout=30,
            must_run=True,
            opts=pulumi.ResourceOptions(
                parent=self,
                # The name is fixed, so the old container must go before the new one.
                delete_before_replace=True,
                # The provider ignores edits of these after creation: force a new container.
                replace_on_changes=["healthcheck", "tmpfs"],
            ),
        )

        self.exporter: docker.Container | None = None
        if settings.exporter_enabled:
            if exporter_password is None:
                raise ValueError("exporter_password is required when exporterEnabled is true")
            self.exporter = self._exporter(name, settings, exporter_password)

        self.register_outputs({"container_name": self.container.name})

    def _exporter(self, name: str, settings: Settings, password: pulumi.Input[str]) -> docker.Container:
        """redis_exporter beside Redis, reading its password from a file on its own volume
        (a plain environment variable would show in `docker inspect`)."""
        image = docker.RemoteImage(
            f"{name}-exporter-image",
            name=settings.exporter_image,
            keep_locally=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        secrets_volume = docker.Volume(
            f"{name}-exporter-secrets",
            name=f"{settings.volume_name}_exporter",
            labels=[docker.VolumeLabelArgs(label="com.bizosaas.stack", value=settings.stack)],
            opts=pulumi.ResourceOptions(parent=self),
        )
        address = f"redis://{settings.name}:{redis_conf.CONTAINER_PORT}"
        password_file = pulumi.Output.secret(
            pulumi.Output.from_input(password).apply(lambda pw: json.dumps({address: pw}))
        )
        return docker.Container(
            f"{name}-exporter",
            name=f"{settings.name}-exporter",
            image=image.image_id,
            envs=[
                f"REDIS_ADDR={address}",
                f"REDIS_USER={redis_conf.EXPORTER_USER}",
                f"REDIS_PASSWORD_FILE={EXPORTER_SECRETS_DIR}/password.json",
            ],
            user=EXPORTER_USER_ID,
            ports=[
                docker.ContainerPortArgs(
                    internal=9121, external=settings.exporter_port, ip=settings.publish_address, protocol="tcp"
                )
            ],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=self.network_name)],
            volumes=[
                docker.ContainerVolumeArgs(
                    volume_name=secrets_volume.name, container_path=EXPORTER_SECRETS_DIR, read_only=False
                )
            ],
            read_only=True,
            capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
            security_opts=["no-new-privileges:true"],
            memory=64,
            memory_swap=64,
            restart=settings.restart_policy,
            labels=[
                docker.ContainerLabelArgs(label=k, value=v)
                for k, v in {
                    "com.bizosaas.service": "redis-exporter",
                    "com.bizosaas.stack": settings.stack,
                    "com.bizosaas.environment": settings.environment,
                }.items()
            ],
            log_driver="json-file",
            log_opts={"max-size": settings.log_max_size, "max-file": str(settings.log_max_files)},
            uploads=[
                docker.ContainerUploadArgs(
                    file=f"{EXPORTER_SECRETS_DIR}/password.json",
                    content=password_file,
                    owner=EXPORTER_USER_ID.split(":")[0],
                    group=EXPORTER_USER_ID.split(":")[1],
                    permissions="0400",
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True, depends_on=[self.container]),
        )
