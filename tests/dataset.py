"""Keys of every type with TTLs, and an exact snapshot of them, for data-safety tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis

# The logical value of each type (DUMP bytes may change with the encoding after a reload).
READ: dict[bytes, Callable[[Any, bytes], Any]] = {
    b"string": lambda c, k: c.get(k),
    b"hash": lambda c, k: c.hgetall(k),
    b"list": lambda c, k: c.lrange(k, 0, -1),
    b"set": lambda c, k: c.smembers(k),
    b"zset": lambda c, k: c.zrange(k, 0, -1, withscores=True),
    b"stream": lambda c, k: c.xrange(k),
}


def write_every_type(client: redis.Redis, prefix: str, count: int = 200) -> int:
    """`count` × 5 keys (string, hash, list, set, zset; some with TTLs), a stream, a
    HyperLogLog and a bitmap under `prefix`; returns how many keys were written."""
    pipe = client.pipeline(transaction=False)
    for i in range(count):
        base = f"{prefix}:{i}"
        pipe.set(f"{base}:str", f"v{i}", ex=3600 + i if i % 2 else None)
        pipe.hset(f"{base}:hash", mapping={"f": i})
        pipe.rpush(f"{base}:list", "a", "b", i)
        pipe.sadd(f"{base}:set", "x", i)
        pipe.zadd(f"{base}:zset", {"m": i})
        if i % 3 == 0:
            pipe.expire(f"{base}:zset", 7200)
    pipe.xadd(f"{prefix}:stream", {"event": "created"})
    pipe.pfadd(f"{prefix}:hll", *[f"u{i}" for i in range(500)])
    pipe.setbit(f"{prefix}:bits", 4242, 1)
    pipe.execute()
    return count * 5 + 3


def snapshot(client: redis.Redis, prefix: str) -> dict[bytes, tuple[bytes, Any, int]]:
    """key -> (type, value, PTTL) of every key under `prefix` (client without decoding)."""
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    pipe = client.pipeline(transaction=False)
    for key in keys:
        pipe.type(key)
    kinds = pipe.execute()
    pipe = client.pipeline(transaction=False)
    for key, kind in zip(keys, kinds, strict=True):
        READ[kind](pipe, key)
        pipe.pttl(key)
    replies = pipe.execute()
    snap = {}
    for i, (key, kind) in enumerate(zip(keys, kinds, strict=True)):
        value = sorted(replies[2 * i]) if kind == b"set" else replies[2 * i]
        snap[key] = (kind, value, replies[2 * i + 1])
    return snap


def differences(before: dict, after: dict, elapsed_ms: float) -> list[str]:
    """What changed between two snapshots, allowing each TTL to have run down by `elapsed_ms`."""
    problems = [f"{key!r} lost" for key in before.keys() - after.keys()]
    for key in before.keys() & after.keys():
        (kind, value, pttl), (kind2, value2, pttl2) = before[key], after[key]
        if (kind, value) != (kind2, value2):
            problems.append(f"{key!r} changed")
        elif pttl == -1 and pttl2 != -1:
            problems.append(f"{key!r} gained a TTL")
        elif pttl != -1 and not (pttl - elapsed_ms - 1000 <= pttl2 <= pttl):
            problems.append(f"{key!r} TTL {pttl} -> {pttl2}")
    return problems
