"""Persistence: RDB snapshots and the append-only file."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, Field

from bizosaas_redis.settings.values import MODEL_CONFIG, JsonList, SaveRule, YamlWord, online, parse_save_rule

# The service's RDB rules as it runs today (save 900 1 / 300 10 / 60 10000).
DEFAULT_SAVE = ((900, 1), (300, 10), (60, 10000))


def default_save_rules() -> list[SaveRule]:
    return [SaveRule(seconds=s, changes=c) for s, c in DEFAULT_SAVE]


class PersistenceSettings(BaseModel):
    model_config = MODEL_CONFIG

    save: Annotated[list[Annotated[SaveRule, BeforeValidator(parse_save_rule)]], JsonList] = Field(
        default_factory=default_save_rules,
        description='RDB rules, each "<seconds> <changes>"; an empty list turns RDB off.',
        json_schema_extra=online("save"),
    )
    appendonly: bool = Field(
        True,
        description="Turn on the append-only file (AOF). Switching it on keeps the data: the first start "
        "with it seeds the AOF from the snapshot written at stop.",
    )
    appendfsync: Annotated[Literal["always", "everysec", "no"], YamlWord] = Field(
        "everysec", description="AOF fsync policy.", json_schema_extra=online("appendfsync")
    )
    save_on_shutdown: bool = Field(
        True,
        description="With AOF off: write a snapshot when the container is stopped or replaced, even with RDB "
        "rules off (`shutdown-on-sigterm save`), so a replacement keeps what was in memory. With AOF on, a stop "
        "flushes the AOF and writes no snapshot (`nosave`: the AOF holds everything, and a snapshot would add "
        "its whole write time, which grows with the data, to every stop); switching AOF off loads the AOF once "
        "at start.",
    )
