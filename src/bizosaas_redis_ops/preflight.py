"""Checks on the running Redis before a change replaces it: what the change would do to its data."""

from __future__ import annotations

import re
from typing import Any

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


# The newest RDB format each server line reads (Redis 7.4 and 8 write 12; Valkey reads 11).
READABLE_RDB: dict[str, dict[tuple[int, int], int]] = {
    "redis": {(6, 0): 9, (6, 2): 9, (7, 0): 10, (7, 2): 11, (7, 4): 12, (8, 0): 12, (8, 2): 12},
    "valkey": {(7, 2): 11, (8, 0): 11, (8, 1): 11},
}
_SERVER_IMAGE = re.compile(r"(redis|valkey)[^:/@]*:v?(\d+)\.(\d+)")
# The data files a start would load: the snapshot, and the AOF's RDB-format base.
_HEADERS = 'cd /data && for f in dump.rdb appendonlydir/*.base.rdb; do [ -f "$f" ] && head -c 9 "$f" && echo; done'


def readable_rdb_version(image: str) -> int | None:
    """The newest RDB format the image's server reads, when its tag says which server it is."""
    found = _SERVER_IMAGE.search(image.rsplit("/", 1)[-1] if "/" in image else image)
    if found is None:
        return None
    flavour, line = found.group(1), (int(found.group(2)), int(found.group(3)))
    known = READABLE_RDB[flavour]
    if line in known:
        return known[line]
    return max(known.values()) if line > max(known) else None


def rdb_versions(headers: str) -> list[int]:
    """RDB format versions from file headers (`REDIS0012`)."""
    return [int(line[5:9]) for line in headers.split() if line.startswith("REDIS") and line[5:9].isdigit()]


def data_format(container: Any, new_image: str) -> None:
    """Refuse to start a server on data files it cannot read: it would start empty, or not at all."""
    readable = readable_rdb_version(new_image)
    if readable is None or container is None or container.status != "running":
        return
    code, output = container.exec_run(["sh", "-c", _HEADERS])
    versions = rdb_versions(output.decode(errors="replace")) if code == 0 else []
    if versions and max(versions) > readable:
        raise PreflightError(
            f"redis:image = {new_image} reads RDB format up to {readable}, but the data on the volume is format "
            f"{max(versions)} (written by a newer server): it would not load it. Keep a server that reads it, "
            "or copy the keys logically into a fresh deployment (SCAN and rewrite each key); nothing was changed"
        )
