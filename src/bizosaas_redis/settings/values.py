"""The value types settings are made of: sizes, ports, Docker names, RDB rules, Docker
hosts, and how config strings become them (Pulumi hands lists and maps as JSON)."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict as SchemaExtra

if TYPE_CHECKING:
    from bizosaas_redis.settings.model import Settings

# A setting Redis applies while it runs (`CONFIG SET <directive>`): its Field carries
# `json_schema_extra=online("<directive>")`. A change of it is applied to the running
# servers, not by a new container (bizosaas_redis_pulumi.components.online).
ONLINE_MARK = "redisOnlineDirective"


# A setting Sentinel applies while it runs (`SENTINEL SET <master> <option>`), marked
# `json_schema_extra=online_sentinel("<option>")`: set on every running Sentinel.
SENTINEL_ONLINE_MARK = "sentinelOnlineOption"


# A setting that shapes the ACL users (users.acl): set on every running server and
# Sentinel with `ACL SETUSER`, marked `json_schema_extra=online_acl()`.
ACL_MARK = "redisAclUsers"


def online_acl() -> SchemaExtra:
    return {ACL_MARK: "ACL SETUSER"}


def online(directive: str) -> SchemaExtra:
    return {ONLINE_MARK: directive}


def online_sentinel(option: str) -> SchemaExtra:
    return {SENTINEL_ONLINE_MARK: option}


# Every settings model: camelCase keys as in the stack files, unknown keys refused.
MODEL_CONFIG = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

_SIZE_RE = re.compile(r"^\s*(\d+)\s*(b|k|kb|m|mb|g|gb)?\s*$", re.IGNORECASE)
# Redis units: k/m/g are powers of 1000, kb/mb/gb powers of 1024 (see redis.conf).
_UNITS = {
    "b": 1,
    "k": 1000,
    "kb": 1024,
    "m": 1000**2,
    "mb": 1024**2,
    "g": 1000**3,
    "gb": 1024**3,
}


def parse_size(value: Any) -> int:
    """Parse a Redis memory size (`2gb`, `512mb`, `1000000`) into bytes."""
    if isinstance(value, bool):
        raise ValueError("must be a size such as 2gb, 512mb or a number of bytes")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE_RE.match(str(value))
        if not match:
            raise ValueError("must be a size such as 2gb, 512mb or a number of bytes (units: b, k, kb, m, mb, g, gb)")
        size = int(match.group(1)) * _UNITS[(match.group(2) or "b").lower()]
    if size <= 0:
        raise ValueError("must be greater than zero")
    return size


def format_size(size: int) -> str:
    """Format bytes with the largest binary Redis unit that divides them exactly."""
    for unit in ("gb", "mb", "kb"):
        if size % _UNITS[unit] == 0:
            return f"{size // _UNITS[unit]}{unit}"
    return str(size)


def _json_list(value: Any) -> Any:
    # Pulumi hands structured config to the program as JSON strings.
    if isinstance(value, str) and value.strip().startswith("["):
        return json.loads(value)
    return value


def _json_dict(value: Any) -> Any:
    if isinstance(value, str) and value.strip().startswith("{"):
        return json.loads(value)
    return value


def _yaml_word(value: Any) -> Any:
    # YAML 1.1 readers (PyYAML) turn a bare `no`/`yes` into a bool; Pulumi's reads a string.
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


Size = Annotated[int, BeforeValidator(parse_size)]
Seconds = Annotated[int, Field(ge=0, le=31_536_000)]
Port = Annotated[int, Field(ge=1, le=65535)]
DockerName = Annotated[str, Field(pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")]
ImageRef = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._/:-]*(@sha256:[a-f0-9]{64})?$")]
JsonList = BeforeValidator(_json_list)
JsonDict = BeforeValidator(_json_dict)
YamlWord = BeforeValidator(_yaml_word)


class SaveRule(BaseModel):
    """One RDB snapshot rule: save after `seconds` if at least `changes` keys changed."""

    seconds: int = Field(ge=1)
    changes: int = Field(ge=1)

    def __str__(self) -> str:
        return f"{self.seconds} {self.changes}"


def parse_save_rule(value: Any) -> Any:
    if isinstance(value, str):
        parts = value.split()
        if len(parts) != 2 or not all(p.isdigit() for p in parts):
            raise ValueError('each rule must be "<seconds> <changes>", e.g. "900 1"')
        return {"seconds": int(parts[0]), "changes": int(parts[1])}
    return value


class DockerHost(BaseModel):
    """A Docker host nodes and Sentinels of the sentinel topology run on."""

    model_config = MODEL_CONFIG

    url: str | None = Field(
        None,
        pattern=r"^(unix|tcp|ssh)://\S+$",
        description="Docker endpoint (`unix:///var/run/docker.sock`, `ssh://deploy@10.0.0.2`); none: the default one.",
    )
    address: str = Field(description="IP address the nodes on this host listen on and announce.")

    @field_validator("address")
    @classmethod
    def _concrete_ip(cls, value: str) -> str:
        try:
            parsed = ipaddress.ip_address(value)
        except ValueError:
            raise ValueError("must be an IP address") from None
        if parsed.is_unspecified:
            raise ValueError("must be a concrete address that Sentinels and clients reach, not a wildcard")
        return value


# A rule broken across settings: (key, value, what is allowed, every field the rule reads).
Problem = tuple[str, Any, str, tuple[str, ...]]


@dataclass
class Problems:
    """The cross-field problems of one instance's settings, collected from every concern
    so that all of them are reported at once."""

    settings: Settings
    found: list[Problem] = field(default_factory=list)

    def add(self, key: str, message: str, *others: str, value: Any = None, show: bool = False) -> None:
        """A problem of `key` (its value shown, or `value` with show), whose rule also reads `others`."""
        self.found.append((key, value if show else getattr(self.settings, key), message, (key, *others)))
