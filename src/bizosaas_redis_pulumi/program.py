"""The Pulumi program: stack config -> Settings -> a RedisServer or SentinelCluster per
instance -> stack outputs. It reads settings and wires components; they hold the resources."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_random as random
from pulumi.runtime import config as runtime_config

from bizosaas_redis import redis_conf, sentinel_conf, stack_outputs, topology
from bizosaas_redis.connection import (
    InstanceNames,
    consumer_env,
    consumer_secrets,
    instance_names,
    redis_url,
    service_roles,
)
from bizosaas_redis.settings import (
    NAMESPACE,
    NEXT_KEYS,
    PREVIOUS_KEYS,
    SECRET_KEYS,
    Settings,
    SettingsError,
    build_settings,
    instances,
)
from bizosaas_redis_pulumi.components import Passwords, RedisServer, SentinelCluster


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


def _url_of(settings: Settings, user: str, password: str | None) -> str:
    return redis_url(settings, user, password, settings.cache_db)


def _secret_url(password: pulumi.Input[str] | None, build: Callable[[str | None], str]) -> pulumi.Output[str]:
    return pulumi.Output.secret(pulumi.Output.from_input(password).apply(build))


@dataclass
class Instance:
    """One deployed instance: its settings, its server (node 0 of a sentinel topology) and
    application password."""

    settings: Settings
    service: RedisServer
    app_password: pulumi.Output[str] | None


def _instance_password(names: InstanceNames, key: str, suffix: str) -> pulumi.Output[str]:
    """The instance's secret `key` (durable-prefixed for a split stack's durable instance),
    generated as the resource `<resource>-<suffix>` when unset."""
    return _password(names.config_key(key), f"{names.resource}-{suffix}")


def _previous(names: InstanceNames) -> dict[str, pulumi.Output[str]]:
    """A rotation's previous passwords (password key -> its previous one), still accepted
    until `bizosaas-redis rotate finish` removes them from the stack's config."""
    config = pulumi.Config(NAMESPACE)
    return {
        key: given
        for key, previous in PREVIOUS_KEYS.items()
        if (given := config.get_secret(names.config_key(previous))) is not None
    }


def _other(names: InstanceNames, key: str) -> pulumi.Output[str] | None:
    """During a rotation of the replication or Sentinel password (`key`), the one accepted
    beside it: the next one (`rotate start`) or the previous one (`rotate switch`)."""
    config = pulumi.Config(NAMESPACE)
    return config.get_secret(names.config_key(NEXT_KEYS[key])) or config.get_secret(
        names.config_key(PREVIOUS_KEYS[key])
    )


def _passwords(settings: Settings, names: InstanceNames) -> Passwords:
    previous = _previous(names)
    config = pulumi.Config(NAMESPACE)
    return Passwords(
        app=_instance_password(names, "password", "password") if settings.auth_enabled else None,
        published_app=None if settings.auth_enabled else config.get_secret(names.config_key("password")),
        admin=_instance_password(names, "adminPassword", "admin-password"),
        exporter=_instance_password(names, "exporterPassword", "exporter-password")
        if settings.exporter_enabled
        else None,
        previous_app=previous.get("password"),
        previous_admin=previous.get("adminPassword"),
        previous_exporter=previous.get("exporterPassword"),
    )


def deploy_instance(
    settings: Settings, network_name: pulumi.Input[str] | None = None, after: list[pulumi.Resource] | None = None
) -> Instance:
    """The instance's passwords, its RedisServer (or SentinelCluster) and its outputs
    (prefixed `durable_` for the durable instance of a split stack; the cache's resource
    names stay those of layout single, so that a switch keeps it the same resource, on the
    same volume)."""
    names = instance_names(settings.role)
    passwords = _passwords(settings, names)
    if settings.topology == "sentinel":
        replication = _instance_password(names, "replicationPassword", "replication-password")
        sentinel = _instance_password(names, "sentinelPassword", "sentinel-password")
        cluster = SentinelCluster(
            names.resource,
            settings,
            passwords,
            replication,
            sentinel,
            after=after,
            others=(_other(names, "replicationPassword"), _other(names, "sentinelPassword")),
        )
        service = cluster.primary
        # What `rotate switch` keeps as the previous one (a generated one is the state's alone).
        _export(names.output_prefix + "replication_password", pulumi.Output.secret(replication))
        _export(names.output_prefix + "sentinel_password", pulumi.Output.secret(sentinel))
    else:
        service = RedisServer(names.resource, settings, passwords, network_name=network_name, after=after)
    # The consumers' password; with authentication off, one `rotate start` published
    # (turning it on), which the server accepts as it accepts none.
    published = passwords.app if passwords.app is not None else passwords.published_app
    app_password = pulumi.Output.from_input(published) if published is not None else None
    _export_instance(settings, names, service, app_password, pulumi.Output.from_input(passwords.admin))
    if passwords.exporter is not None:  # what `rotate start --user exporter` keeps as the previous one
        _export(names.output_prefix + "exporter_password", pulumi.Output.secret(passwords.exporter))
    return Instance(settings, service, app_password)


def _export(name: str, value: Any) -> None:
    """pulumi.export of an output the reference documents (bizosaas_redis.stack_outputs)."""
    if not stack_outputs.documented(name):
        raise ValueError(f"stack output {name} is not in bizosaas_redis.stack_outputs: document it there")
    pulumi.export(name, value)


def _export_instance(
    settings: Settings,
    names: InstanceNames,
    service: RedisServer,
    app_password: pulumi.Output[str] | None,
    admin_password: pulumi.Output[str],
) -> None:
    def export(key: str, value: Any) -> None:
        _export(names.output_prefix + key, value)

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
        export("redis_conf", sentinel_conf.render_node_config(settings, topology.nodes(settings)[0]))
    else:
        export("redis_conf", redis_conf.render_config(settings))
    for key, user, password in (
        ("redis_url", settings.app_username, app_password),
        ("redis_admin_url", settings.admin_username, admin_password),
    ):
        export(key, _secret_url(password, functools.partial(_url_of, settings, user)))
    if app_password is not None:
        export("redis_password", pulumi.Output.secret(app_password))
    if settings.exporter_enabled:
        urls = [f"http://{endpoint}/metrics" for endpoint in topology.exporter_endpoints(settings)]
        export("exporter_url", urls[0])
        if settings.topology == "sentinel":
            export("exporter_urls", urls)
            sentinels = topology.exporter_endpoints(settings, "sentinel")
            export("sentinel_exporter_urls", [f"http://{endpoint}/metrics" for endpoint in sentinels])


def main() -> None:
    settings = load_settings()
    first, *others = instances(settings)
    deployed = {first.role: deploy_instance(first)}
    for other in others:  # on the network the first one created or found, after its container
        cache = deployed[first.role].service
        deployed[other.role] = deploy_instance(other, cache.network_name, after=[cache.container])
    _export("layout", settings.layout)
    _export("cache_db", settings.cache_db)
    _export("celery_broker_db", settings.celery_broker_db)
    _export("celery_result_db", settings.celery_result_db)
    _export("settings", json.loads(settings.model_dump_json(by_alias=True)))
    # Which instance serves what, the same keys in both layouts.
    serving = {use: deployed[role] for use, role in service_roles(settings.layout).items()}
    serving_settings = {use: instance.settings for use, instance in serving.items()}
    _export("consumer_env", consumer_env(serving_settings))
    passwords = pulumi.Output.all(cache=serving["cache"].app_password, durable=serving["durable"].app_password)
    _export(
        "consumer_secrets",
        pulumi.Output.secret(
            passwords.apply(
                lambda pws: consumer_secrets(serving_settings, {"cache": pws["cache"], "durable": pws["durable"]})
            )
        ),
    )
