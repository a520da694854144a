"""From raw config values to a stack's validated settings: every problem at once, each one
line naming the key, the value and what is allowed; and the instances a stack runs."""

from __future__ import annotations

import difflib
import json
from typing import Any, Literal

from pydantic import ValidationError
from pydantic.alias_generators import to_camel, to_snake
from pydantic_core import ErrorDetails

from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings.keys import DURABLE_PREFIX, INTERNAL_FIELDS, NAMESPACE, SECRET_KEYS
from bizosaas_redis.settings.model import Settings


class SettingsError(BizosaasRedisError, ValueError):
    """All problems of one stack's settings, each naming the key, value and what is allowed."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {len(problems)} invalid setting(s):\n{lines}")


class NoDurableInstance(BizosaasRedisError):
    """The durable instance of a stack that has none (layout single)."""


def _known_keys() -> list[str]:
    return [f.alias or to_camel(n) for n, f in Settings.model_fields.items() if n not in INTERNAL_FIELDS]


def _describe(error: ErrorDetails) -> list[str]:
    loc = [str(p) for p in error["loc"]]
    key = f"{NAMESPACE}:{to_camel(loc[0])}" if loc else NAMESPACE
    # List items by index; a dockerHosts entry by host name and field.
    nested = bool(loc) and loc[0] == "docker_hosts"
    where = key + "".join(f"[{p}]" if p.isdigit() else f".{p}" if nested else "" for p in loc[1:])
    value = error.get("input")
    kind = error["type"]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(loc[0], _known_keys(), n=1)
        hint = f"; did you mean {NAMESPACE}:{close[0]}?" if close else ""
        return [f"{key}: unknown setting{hint} (known settings: docs/reference/configuration.md)"]
    if _is_cross_field(error):
        return [line for line, _ in _cross_field_lines(error)]
    message = error["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    if kind == "string_pattern_mismatch":
        message = f"must match {error['ctx']['pattern']}"
    return [f"{where} = {json.dumps(value, default=str)}: {message}"]


def _is_cross_field(error: ErrorDetails) -> bool:
    return error["type"] == "value_error" and str(error.get("ctx", {}).get("error", "")).startswith("[[")


def _cross_field_lines(error: ErrorDetails) -> list[tuple[str, set[str]]]:
    """Each cross-field problem as its line, with the settings its rule reads."""
    found = json.loads(str(error.get("ctx", {})["error"]))
    return [(f"{NAMESPACE}:{k} = {json.dumps(v)}: {m}", set(fields)) for k, v, m, fields in found]


def _problems(data: dict[str, Any], extra: dict[str, Any]) -> tuple[Settings | None, list[str]]:
    """Validate one instance's settings: the Settings, or every problem at once."""
    try:
        return Settings.model_validate({**data, **extra}), []
    except ValidationError as exc:
        errors = exc.errors()
    problems = [line for err in errors for line in _describe(err)]
    failed = {to_camel(str(err["loc"][0])) for err in errors if err["loc"]}
    if failed:
        # A field error stops pydantic before the cross-field rules: run them on the valid
        # settings too, keeping the problems whose rule reads no invalid setting.
        try:
            Settings.model_validate({**{k: v for k, v in data.items() if k not in failed}, **extra})
        except ValidationError as again:
            for err in again.errors():
                if _is_cross_field(err):
                    problems += [line for line, fields in _cross_field_lines(err) if not fields & failed]
    return None, problems


def build_settings(values: dict[str, Any], stack: str, source: str | None = None) -> Settings:
    """Validate raw config values (camelCase keys, no namespace) into Settings.

    With layout split, the durable instance's settings are validated too (reported as
    `redis:durable.<key>`). Raises SettingsError listing every problem at once.
    """
    source = source or f"stack {stack}"
    data = {k: v for k, v in values.items() if k not in SECRET_KEYS and k not in INTERNAL_FIELDS}
    settings, problems = _problems(data, {"stack": stack})
    if settings is not None and settings.layout == "split":
        durable, found = _problems(settings.durable_values(), {"stack": stack, "role": "durable"})
        prefix = f"{NAMESPACE}:"
        problems += [prefix + DURABLE_PREFIX + "." + line.removeprefix(prefix) for line in found]
        if durable is not None:
            problems += _split_conflicts(settings, durable)
    if problems:
        raise SettingsError(source, problems)
    assert settings is not None
    return settings


def _split_conflicts(cache: Settings, durable: Settings) -> list[str]:
    """The two instances of a split stack may not share a name, volume or host port."""
    out = []
    for key, what in (
        ("container_name", cache.name),
        ("volume_name", cache.volume_name),
        ("host_port", cache.host_port),
    ):
        mine = durable.name if key == "container_name" else getattr(durable, key)
        if mine == what:
            out.append(
                f"{NAMESPACE}:{DURABLE_PREFIX}.{to_camel(key)} = {json.dumps(mine)}: must differ from the cache "
                f"instance's {to_camel(key)}"
            )
    if cache.exporter_enabled and durable.exporter_port in (cache.exporter_port, cache.host_port):
        out.append(
            f"{NAMESPACE}:{DURABLE_PREFIX}.exporterPort = {durable.exporter_port}: must differ from the cache "
            "instance's ports"
        )
    elif "sentinel" in (cache.topology, durable.topology):
        out += _ranges_meet(cache, durable)
    return out


def _ranges_meet(cache: Settings, durable: Settings) -> list[str]:
    """With topology sentinel, nodes, Sentinels and exporters count up from their first
    port: the durable instance's ranges must miss the cache's."""
    from bizosaas_redis import topology  # it imports the settings

    def taken(s: Settings) -> dict[str, list[int]]:
        by = topology.ports(s)
        return by if s.exporter_enabled else {k: v for k, v in by.items() if k != "exporterPort"}

    theirs = {p for ports in taken(cache).values() for p in ports}
    out = []
    for key, mine in taken(durable).items():
        met = sorted(theirs & set(mine))
        if met:
            out.append(
                f"{NAMESPACE}:{DURABLE_PREFIX}.{key} = {getattr(durable, to_snake(key))}: its ports {mine[0]}-"
                f"{mine[-1]} meet the cache instance's ({', '.join(map(str, met))}); move it past them"
            )
    return out


def instances(settings: Settings) -> list[Settings]:
    """The instances a stack runs: one (layout single), or the cache and the durable one."""
    if settings.layout == "single":
        return [settings]
    return [
        settings,
        Settings.model_validate({**settings.durable_values(), "stack": settings.stack, "role": "durable"}),
    ]


def instance(settings: Settings, which: Literal["cache", "durable"]) -> Settings:
    """The stack's `cache` instance (the one instance of layout single) or its `durable` one."""
    running = instances(settings)
    if which == "cache":
        return running[0]
    if len(running) == 1:
        raise NoDurableInstance(f"stack {settings.stack} has layout {settings.layout}: it has no durable instance")
    return running[1]
