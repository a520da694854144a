"""How consumers use the databases, and their TTLs (exported to them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from bizosaas_redis.constants import (
    DEFAULT_BROKER_DB,
    DEFAULT_CACHE_DB,
    DEFAULT_CACHE_TTL,
    DEFAULT_RESULT_DB,
    DEFAULT_SESSION_TTL,
    DEFAULT_STREAM_MAXLEN,
)
from bizosaas_redis.settings.values import MODEL_CONFIG, Problems, Seconds

if TYPE_CHECKING:
    from bizosaas_redis.settings.model import Settings


class DatabaseSettings(BaseModel):
    model_config = MODEL_CONFIG

    databases: int = Field(16, ge=1, le=64, description="Number of logical databases.")
    cache_db: int = Field(DEFAULT_CACHE_DB, ge=0, description="Database for caches and sessions.")
    celery_broker_db: int = Field(DEFAULT_BROKER_DB, ge=0, description="Database of the Celery broker.")
    celery_result_db: int = Field(DEFAULT_RESULT_DB, ge=0, description="Database of Celery results.")
    cache_ttl: Seconds = Field(DEFAULT_CACHE_TTL, gt=0, description="Default cache TTL (s).")
    session_ttl: Seconds = Field(DEFAULT_SESSION_TTL, gt=0, description="Session TTL (s).")
    stream_maxlen: int = Field(DEFAULT_STREAM_MAXLEN, ge=1, description="Approximate MAXLEN of event streams.")


def check(s: Settings, problems: Problems) -> None:
    for key in ("cache_db", "celery_broker_db", "celery_result_db"):
        if getattr(s, key) >= s.databases:
            problems.add(key, f"must be below databases ({s.databases})", "databases")
    if s.celery_broker_db == s.celery_result_db:
        problems.add("celery_result_db", "must differ from celeryBrokerDb", "celery_broker_db")
