"""Security: authentication, ACL users, denied commands, TLS."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from bizosaas_redis.settings.values import (
    MODEL_CONFIG,
    DockerName,
    JsonList,
    Problems,
    YamlWord,
    online,
    online_acl,
)

if TYPE_CHECKING:
    from bizosaas_redis.settings.model import Settings

# ACL users the service defines for itself.
RESERVED_USERS = ("healthcheck", "exporter")
# Commands an application user must always have, or clients and the healthcheck break.
ESSENTIAL_COMMANDS = ("PING", "AUTH", "HELLO", "SELECT", "QUIT", "RESET")
DEFAULT_DENIED_COMMANDS = [
    "FLUSHALL",
    "FLUSHDB",
    "KEYS",
    "DEBUG",
    "CONFIG",
    "SHUTDOWN",
    "MONITOR",
    "SAVE",
    "BGSAVE",
    "BGREWRITEAOF",
    "REPLICAOF",
    "SLAVEOF",
    "MIGRATE",
    "MODULE",
    "SWAPDB",
    "FAILOVER",
    "ACL",
    "SYNC",
    "PSYNC",
]


class SecuritySettings(BaseModel):
    model_config = MODEL_CONFIG

    auth_enabled: bool = Field(True, description="Require a password (required in production).")
    app_username: DockerName = Field(
        "default",
        description="ACL user of the applications (`default` serves password-only clients).",
        json_schema_extra=online_acl(),
    )
    admin_username: DockerName = Field("admin", description="ACL user with every command.")
    denied_commands: Annotated[list[str], JsonList] = Field(
        default_factory=lambda: list(DEFAULT_DENIED_COMMANDS),
        description="Commands the application user may not run (ACL `-cmd`).",
        json_schema_extra=online_acl(),
    )
    tls_enabled: bool = Field(False, description="Serve TLS only on the Redis port.")
    tls_certs_dir: str | None = Field(
        None,
        description="Host folder with tls.crt, tls.key and ca.crt (owned by 999:1000), mounted read-only at /tls.",
    )
    tls_auth_clients: Annotated[Literal["yes", "no", "optional"], YamlWord] = Field(
        "optional", description="Require client certificates.", json_schema_extra=online("tls-auth-clients")
    )

    @field_validator("denied_commands")
    @classmethod
    def _commands(cls, value: list[str]) -> list[str]:
        out = []
        for command in value:
            name = command.strip().upper()
            if not re.fullmatch(r"[A-Z][A-Z-]*(\|[A-Z-]+)?", name):
                raise ValueError(f"{command!r} is not a command name (e.g. FLUSHALL, CONFIG|SET)")
            if name in ESSENTIAL_COMMANDS:
                raise ValueError(
                    f"{name} cannot be denied: clients and the healthcheck need {', '.join(ESSENTIAL_COMMANDS)}"
                )
            out.append(name)
        return out


def check(s: Settings, problems: Problems) -> None:
    if s.environment == "production" and not s.auth_enabled:
        problems.add("auth_enabled", "must be true in production", "environment")
    if s.tls_enabled and not s.tls_certs_dir:
        problems.add("tls_certs_dir", "is required when tlsEnabled is true", "tls_enabled")
    if s.tls_enabled and s.exporter_enabled and s.tls_auth_clients == "yes":
        problems.add(
            "tls_auth_clients",
            "cannot be yes with exporterEnabled: redis_exporter verifies Redis with ca.crt but has no client "
            "certificate of its own; use optional (clients that present one are still verified)",
            "exporter_enabled",
            "tls_enabled",
        )
    if s.app_username == s.admin_username:
        problems.add("admin_username", "must differ from appUsername", "app_username")
    for key in ("app_username", "admin_username"):
        if getattr(s, key) in RESERVED_USERS:
            problems.add(key, f"is reserved ({', '.join(RESERVED_USERS)})")
