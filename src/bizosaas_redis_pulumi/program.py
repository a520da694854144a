"""The Pulumi program: stack config -> Settings -> RedisService -> stack outputs."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_docker as docker
import pulumi_random as random
from pulumi.runtime import config as runtime_config

from bizosaas_redis import handover, redis_conf, sentinel_conf, startup, topology
from bizosaas_redis.connection import (
    InstanceNames,
    consumer_env,
    consumer_secrets,
    instance_names,
    redis_url,
    service_roles,
)
from bizosaas_redis.settings import NAMESPACE, SECRET_KEYS, Settings, SettingsError, build_settings, instances
from bizosaas_redis_pulumi.components import NodeOf, RedisSentinel, RedisService


def _stack_config_values() -> dict[str, Any]:
    """Every `redis:` key of the running stack, so that unknown keys are reported too.

    pulumi.Config can only look keys up; the runtime's config map also lists them.
    """
    keys = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    config = pulumi.Config(NAMESPACE)
    values: dict[str, Any] = {}
    for full_key in sorted(keys):
        namespace, _, key = full_key.partition(":")
        # Secrets are read with get_secret where they are used, never in clear here.
        if namespace == NAMESPACE and key and key not in SECRET_KEYS:
            values[key] = config.get(key)
    return values


class StackConfigError(SettingsError, pulumi.RunError):
    """Bad stack settings; as a RunError, Pulumi shows the message without a traceback."""


def load_settings() -> Settings:
    stack = pulumi.get_stack()
    try:
        return build_settings(_stack_config_values(), stack, source=f"Pulumi.{stack}.yaml")
    except SettingsError as exc:
        raise StackConfigError(exc.source, exc.problems) from None


def _password(config_key: str, resource_name: str) -> pulumi.Output[str]:
    """The secret from config when set, else a generated one kept in state (secret)."""
    given = pulumi.Config(NAMESPACE).get_secret(config_key)
    if given is not None:
        return given
    generated = random.RandomPassword(resource_name, length=32, special=False)
    return pulumi.Output.secret(generated.result)


def _secret_url(password: pulumi.Input[str] | None, build: Callable[[str | None], str]) -> pulumi.Output[str]:
    return pulumi.Output.secret(pulumi.Output.from_input(password).apply(build))


@dataclass
class Instance:
    """One deployed instance: its settings, component and application password."""

    settings: Settings
    service: RedisService
    app_password: pulumi.Output[str] | None


def deploy_instance(
    settings: Settings, network_name: pulumi.Input[str] | None = None, after: list[pulumi.Resource] | None = None
) -> Instance:
    """The instance's passwords, its RedisService and its outputs (prefixed `durable_` for
    the durable instance of a split stack; the cache's resource names stay those of layout
    single, so that a switch keeps it the same resource, on the same volume)."""
    names = instance_names(settings.role)
    app_password = (
        _password(names.config_key("password"), f"{names.resource}-password") if settings.auth_enabled else None
    )
    admin_password = _password(names.config_key("adminPassword"), f"{names.resource}-admin-password")
    exporter_password = (
        _password(names.config_key("exporterPassword"), f"{names.resource}-exporter-password")
        if settings.exporter_enabled
        else None
    )
    if settings.topology == "sentinel":
        service = _deploy_topology(settings, names, app_password, admin_password, exporter_password, after)
    else:
        service = RedisService(
            names.resource,
            settings,
            app_password,
            admin_password,
            exporter_password,
            network_name=network_name,
            after=after,
        )

    def export(key: str, value: Any) -> None:
        pulumi.export(names.output_prefix + key, value)

    export("role", settings.role)
    export("topology", settings.topology)
    if settings.topology == "sentinel":
        export("master_name", topology.master_name(settings))
        export("sentinels", [s.endpoint for s in topology.sentinels(settings)])
        export("nodes", [n.endpoint for n in topology.nodes(settings)])
        export("node_containers", [n.container_name for n in topology.nodes(settings)])
    export("container_name", service.container.name)
    export("host", settings.url_host)
    export("port", settings.host_port)
    export("network", service.network_name)
    export("volume", service.volume.name)
    if service.socket_volume is not None:
        export("socket_volume", service.socket_volume.name)
        export("socket_path", redis_conf.SOCKET_PATH)
    export("app_username", settings.app_username)
    export("admin_username", settings.admin_username)
    # What is uploaded minus the user lines, so that previews show config changes.
    if settings.topology == "sentinel":
        first = topology.nodes(settings)[0]
        export("redis_conf", sentinel_conf.render_node_config(settings, first))
    else:
        export("redis_conf", redis_conf.render_config(settings))
    export(
        "redis_url",
        _secret_url(app_password, lambda pw: redis_url(settings, settings.app_username, pw, settings.cache_db)),
    )
    export(
        "redis_admin_url",
        _secret_url(admin_password, lambda pw: redis_url(settings, settings.admin_username, pw, settings.cache_db)),
    )
    if app_password is not None:
        export("redis_password", pulumi.Output.secret(app_password))
    if settings.exporter_enabled:
        urls = [f"http://{endpoint}/metrics" for endpoint in topology.exporter_endpoints(settings)]
        export("exporter_url", urls[0])
        if settings.topology == "sentinel":
            export("exporter_urls", urls)
    return Instance(settings, service, app_password)


def _handover_hook(settings: Settings, node: topology.Placed, resource: str, admin_password: pulumi.Output[str]):
    """The node container's before-delete hook: a planned replacement of the primary first
    moves the role to a replica (handover.move_primary_away)."""
    known: dict[str, str] = {}
    admin_password.apply(lambda password: known.setdefault("admin", password))

    def before_delete(args: pulumi.ResourceHookArgs) -> None:
        if "admin" in known:
            moved_to = handover.move_primary_away(settings, node, known["admin"])
            if moved_to is not None:
                # In `pulumi up`'s output: operators see that a planned change moved the primary.
                pulumi.log.info(f"{node.container_name} handed the primary role to {moved_to[0]}:{moved_to[1]}")

    return pulumi.ResourceHook(f"{resource}-handover", before_delete)


def _deploy_topology(
    settings: Settings,
    names: InstanceNames,
    app_password: pulumi.Output[str] | None,
    admin_password: pulumi.Output[str],
    exporter_password: pulumi.Output[str] | None,
    after: list[pulumi.Resource] | None,
) -> RedisService:
    """Nodes and Sentinels, each on its Docker host. Returns node 0 (the first primary):
    it keeps the standalone container's resource name, name, volume and port.

    Order, for changes that replace every node: the replicas first (node 0 depends on them),
    then node 0, whose hook hands the primary role over before it goes; Sentinels last."""
    replication_password = _password(names.config_key("replicationPassword"), f"{names.resource}-replication-password")
    sentinel_password = _password(names.config_key("sentinelPassword"), f"{names.resource}-sentinel-password")
    providers = {
        name: docker.Provider(f"{names.resource}-docker-{name}", host=host.url) if host.url else None
        for name, host in settings.hosts.items()
    }

    def on_host(host: str) -> pulumi.ResourceOptions | None:
        provider = providers[host]
        return pulumi.ResourceOptions(providers=[provider]) if provider is not None else None

    sentinel_endpoints = [s.address for s in topology.sentinels(settings)]
    name = topology.master_name(settings)
    services: list[RedisService] = []
    for node in reversed(topology.nodes(settings)):
        resource = names.resource if node.index == 0 else f"{names.resource}-node-{node.index}"
        node_of = NodeOf(
            node,
            replication_password,
            sentinel_password,
            startup.Discovery(name, sentinel_endpoints, node.address),
            _handover_hook(settings, node, resource, admin_password),
        )
        depends = [*(after or []), *(s.container for s in services)]
        services.append(
            RedisService(
                resource,
                settings,
                app_password,
                admin_password,
                exporter_password,
                after=depends or None,
                node_of=node_of,
                opts=on_host(node.host_name),
            )
        )
    nodes_created: list[pulumi.Resource] = [s.container for s in services]
    for sentinel in topology.sentinels(settings):
        peers = [s for s in sentinel_endpoints if s != sentinel.address]
        RedisSentinel(
            f"{names.resource}-sentinel-{sentinel.index}",
            settings,
            sentinel,
            app_password,
            admin_password,
            sentinel_password,
            startup.Discovery(name, peers),
            after=nodes_created,
            opts=on_host(sentinel.host_name),
        )
    return services[-1]


def main() -> None:
    settings = load_settings()
    first, *others = instances(settings)
    deployed = {first.role: deploy_instance(first)}
    for other in others:  # on the network the first one created or found, after its container
        cache = deployed[first.role].service
        deployed[other.role] = deploy_instance(other, cache.network_name, after=[cache.container])
    pulumi.export("layout", settings.layout)
    pulumi.export("cache_db", settings.cache_db)
    pulumi.export("celery_broker_db", settings.celery_broker_db)
    pulumi.export("celery_result_db", settings.celery_result_db)
    pulumi.export("settings", json.loads(settings.model_dump_json(by_alias=True)))
    # Which instance serves what, the same keys in both layouts.
    serving = {use: deployed[role] for use, role in service_roles(settings.layout).items()}
    serving_settings = {use: instance.settings for use, instance in serving.items()}
    pulumi.export("consumer_env", consumer_env(serving_settings))
    passwords = pulumi.Output.all(cache=serving["cache"].app_password, durable=serving["durable"].app_password)
    pulumi.export(
        "consumer_secrets",
        pulumi.Output.secret(
            passwords.apply(
                lambda pws: consumer_secrets(serving_settings, {"cache": pws["cache"], "durable": pws["durable"]})
            )
        ),
    )
