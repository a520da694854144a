"""Settings: one instance's settings, composed of one model per concern. The concerns
validate their own fields; the cross-field rules of every concern run together here, so
that every problem is reported at once."""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field, model_validator
from pydantic.alias_generators import to_camel

from bizosaas_redis.settings import (
    databases,
    high_availability,
    identity,
    layout,
    lifecycle,
    memory,
    monitoring,
    security,
)
from bizosaas_redis.settings.databases import DatabaseSettings
from bizosaas_redis.settings.high_availability import DEFAULT_HOST, HighAvailabilitySettings
from bizosaas_redis.settings.identity import IdentitySettings
from bizosaas_redis.settings.layout import DURABLE_PORT_OFFSET, LayoutSettings, Role
from bizosaas_redis.settings.lifecycle import LifecycleSettings
from bizosaas_redis.settings.memory import MemorySettings
from bizosaas_redis.settings.monitoring import MonitoringSettings
from bizosaas_redis.settings.network import NetworkSettings
from bizosaas_redis.settings.persistence import DEFAULT_SAVE, PersistenceSettings
from bizosaas_redis.settings.security import SecuritySettings
from bizosaas_redis.settings.values import (
    ACL_MARK,
    MODEL_CONFIG,
    ONLINE_MARK,
    SENTINEL_ONLINE_MARK,
    DockerHost,
    Problems,
    SaveRule,
)

# Each concern's cross-field rules, in the order their problems are listed.
CHECKS = (
    identity.check,
    layout.check,
    high_availability.check,
    memory.check,
    databases.check,
    security.check,
    lifecycle.check,
    monitoring.check,
)


# Pydantic lists the fields of the last base first: the concerns in reverse, so that the
# configuration reference (docs/reference/configuration.md) reads from identity to monitoring.
class Settings(
    MonitoringSettings,
    LifecycleSettings,
    SecuritySettings,
    PersistenceSettings,
    DatabaseSettings,
    MemorySettings,
    NetworkSettings,
    HighAvailabilitySettings,
    LayoutSettings,
    IdentitySettings,
):
    """Settings of one Redis instance. Keys are the camelCase names under `redis:`."""

    model_config = MODEL_CONFIG

    # Not config keys: the stack the settings belong to, for names and messages, and what
    # this instance holds (set by build_settings).
    stack: str = Field("dev", exclude=True, description="")
    role: Role = Field("shared", exclude=True, description="")

    @model_validator(mode="before")
    @classmethod
    def _defaults_of_other_settings(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return high_availability.default_replication(layout.default_layout(data))

    @model_validator(mode="after")
    def _cross_field(self) -> Settings:
        problems = Problems(self)
        for check in CHECKS:
            check(self, problems)
        if problems.found:
            # One error carrying every problem; loading.describe turns it into lines.
            raise ValueError(
                json.dumps([[to_camel(k), v, m, [to_camel(f) for f in fields]] for k, v, m, fields in problems.found])
            )
        return self

    # Derived values: computed here so that program, scripts and tests agree.
    @property
    def name(self) -> str:
        return self.container_name or f"bizosaas-redis-{self.stack}"

    @property
    def instance_id(self) -> str:
        """The stack, and `-durable` for a split stack's durable instance: names its backups
        and its Prometheus job."""
        return self.stack + ("-durable" if self.role == "durable" else "")

    @property
    def socket_volume_name(self) -> str:
        """The in-memory volume that holds the unix socket (when `unixSocket` is on)."""
        return f"{self.name}-socket"

    @property
    def hosts(self) -> dict[str, DockerHost]:
        """The Docker hosts of the sentinel topology: as set, or the one default host."""
        if self.docker_hosts:
            return dict(self.docker_hosts)
        return {DEFAULT_HOST: DockerHost(address=self.url_host)}

    def durable_values(self) -> dict[str, Any]:
        """The durable instance's settings (camelCase keys): this instance's, its role's
        defaults, then its own block. Only for layout split."""
        inherited = self.model_dump(by_alias=True, exclude={"durable"})
        defaults = {
            "containerName": f"{self.name}-durable",
            "volumeName": f"{self.volume_name}_durable",
            "hostPort": self.host_port + DURABLE_PORT_OFFSET,
            "exporterPort": self.exporter_port + DURABLE_PORT_OFFSET,
            "sentinelPort": self.sentinel_port + DURABLE_PORT_OFFSET,
            "networkAliases": [f"{alias}-durable" for alias in self.network_aliases],
            "maxmemoryPolicy": "noeviction",
            "appendonly": True,
            "save": [str(SaveRule(seconds=s, changes=c)) for s, c in DEFAULT_SAVE],
        }
        return {**inherited, **defaults, **self.durable}


def online_directives() -> dict[str, str]:
    """Field -> the Redis directive it sets, for every setting Redis applies while it runs
    (marked `online` in its concern's model); every other setting needs a new container."""
    return _marked(ONLINE_MARK)


def online_sentinel_options() -> dict[str, str]:
    """Field -> the Sentinel option it sets, for every setting Sentinel applies while it
    runs (marked `online_sentinel`)."""
    return _marked(SENTINEL_ONLINE_MARK)


def online_acl_settings() -> list[str]:
    """The fields that shape the ACL users (marked `online_acl`): set on the running servers
    and Sentinels with ACL SETUSER."""
    return list(_marked(ACL_MARK))


def _marked(mark: str) -> dict[str, str]:
    found = {}
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and mark in extra:
            found[name] = str(extra[mark])
    return found
