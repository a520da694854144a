"""Checks on the running Redis before a change replaces it: what the change would do to its data."""

from __future__ import annotations

import redis

from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings import Settings


class PreflightError(BizosaasRedisError):
    """The change would make the running data unusable; nothing was changed."""


def _mb(size: int) -> str:
    return f"{size / 1024**2:.1f}mb"


def used_memory(admin_url: str) -> int | None:
    """Bytes the running server holds, or None when it does not answer (nothing to protect)."""
    try:
        client = redis.Redis.from_url(admin_url, socket_timeout=5, socket_connect_timeout=5)
        return int(client.info("memory")["used_memory"])
    except (redis.RedisError, OSError):
        return None


def maxmemory_change(new: Settings, used: int | None) -> str | None:
    """None when the new maxmemory holds the data. Below it: on a policy that evicts any key
    (a cache) a note of how much will be evicted; otherwise PreflightError, since every
    write would be refused and keys without a TTL could never be evicted."""
    if used is None or new.maxmemory >= used:
        return None
    over = used - new.maxmemory
    if new.maxmemory_policy.startswith("allkeys-"):
        return (
            f"redis:maxmemory = {_mb(new.maxmemory)} is below the {_mb(used)} in use: "
            f"{new.maxmemory_policy} will evict about {_mb(over)} of keys on the next writes"
        )
    effect = (
        "writes would be refused"
        if new.maxmemory_policy == "noeviction"
        else "only keys with a TTL can be evicted, then writes would be refused"
    )
    raise PreflightError(
        f"redis:maxmemory = {_mb(new.maxmemory)} is below the {_mb(used)} in use under "
        f"maxmemory-policy {new.maxmemory_policy}: {effect}; raise maxmemory, or delete "
        f"{_mb(over)} first; nothing was changed"
    )
