"""The Pulumi program: stack config -> Settings -> RedisService -> stack outputs."""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_random as random
from pulumi.runtime import config as runtime_config

from . import redis_conf
from .components import RedisService
from .connection import consumer_env, redis_url
from .settings import NAMESPACE, SECRET_KEYS, Settings, SettingsError, build_settings


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


def main() -> None:
    settings = load_settings()
    app_password = _password("password", "redis-password") if settings.auth_enabled else None
    admin_password = _password("adminPassword", "redis-admin-password")
    exporter_password = _password("exporterPassword", "redis-exporter-password") if settings.exporter_enabled else None

    service = RedisService("redis", settings, app_password, admin_password, exporter_password)

    pulumi.export("container_name", service.container.name)
    pulumi.export("host", settings.url_host)
    pulumi.export("port", settings.host_port)
    pulumi.export("network", service.network_name)
    pulumi.export("volume", service.volume.name)
    if service.socket_volume is not None:
        pulumi.export("socket_volume", service.socket_volume.name)
        pulumi.export("socket_path", redis_conf.SOCKET_PATH)
    pulumi.export("cache_db", settings.cache_db)
    pulumi.export("celery_broker_db", settings.celery_broker_db)
    pulumi.export("celery_result_db", settings.celery_result_db)
    pulumi.export("app_username", settings.app_username)
    pulumi.export("admin_username", settings.admin_username)
    pulumi.export("consumer_env", consumer_env(settings))
    # What is uploaded minus the user lines, so that previews show config changes.
    pulumi.export("redis_conf", redis_conf.render_config(settings))
    pulumi.export("settings", json.loads(settings.model_dump_json(by_alias=True)))

    app_url = pulumi.Output.from_input(app_password).apply(
        lambda pw: redis_url(settings, settings.app_username, pw, settings.cache_db)
    )
    admin_url = pulumi.Output.from_input(admin_password).apply(
        lambda pw: redis_url(settings, settings.admin_username, pw, settings.cache_db)
    )
    pulumi.export("redis_url", pulumi.Output.secret(app_url))
    pulumi.export("redis_admin_url", pulumi.Output.secret(admin_url))
    if app_password is not None:
        pulumi.export("redis_password", pulumi.Output.secret(app_password))
    if service.exporter is not None:
        pulumi.export("exporter_url", f"http://{settings.url_host}:{settings.exporter_port}/metrics")
