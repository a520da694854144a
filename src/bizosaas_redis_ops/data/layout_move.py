"""Moving services' data to the durable instance after a stack switches to layout split.

The cache instance keeps its container, volume and data when a stack goes from `single`
to `split`; the durable instance starts empty. What services keep on the durable
instance from then on (the Celery broker and result databases, streams, sessions and
JWT blacklist entries) is still on the cache until it is moved, where eviction can take
it and no service reads it any more. `move` copies each such key with DUMP / RESTORE
(value and remaining TTL), deletes it from the cache only once the copy is in place, and
never overwrites a key that already exists on the durable instance (it is reported and
left where it is).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import redis

from bizosaas_redis.answers import is_absent, refusal
from bizosaas_redis.connection import with_db
from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings import Settings

# Key names of the consumer library's durable data (bizosaas_redis_patterns: SessionStore,
# TokenBlacklist); services with other names add theirs with --pattern.
DEFAULT_PATTERNS = ("*session:*", "*jwt-revoked:*")
SCAN_COUNT = 1000
BATCH = 500  # keys per pipelined DUMP / RESTORE round


class LayoutMoveError(BizosaasRedisError):
    pass


@dataclass
class Moved:
    """What a move found and did, per database."""

    found: dict[int, int] = field(default_factory=dict)
    moved: dict[int, int] = field(default_factory=dict)
    conflicts: list[tuple[int, str]] = field(default_factory=list)  # (db, key) kept on the cache


def _durable_keys(client: redis.Redis, whole_db: bool, patterns: tuple[str, ...]) -> list[bytes]:
    """Every key of a whole database, or the streams and pattern-matched keys of the cache's
    (SCAN with TYPE and MATCH: the server filters, the cache's entries never cross the wire)."""
    if whole_db:
        return list(client.scan_iter(count=SCAN_COUNT))
    found = set(client.scan_iter(count=SCAN_COUNT, _type="stream"))
    for pattern in patterns:
        found |= set(client.scan_iter(match=pattern, count=SCAN_COUNT))
    return sorted(found)


def _databases(settings: Settings) -> list[tuple[int, bool]]:
    """(db, whole database?) for each database holding durable data."""
    return [(settings.celery_broker_db, True), (settings.celery_result_db, True), (settings.cache_db, False)]


def _move_batch(source: redis.Redis, target: redis.Redis, keys: list[bytes]) -> tuple[int, list[bytes]]:
    """Copy a batch (value and remaining TTL), then delete what was copied: (moved, conflicts)."""
    read = source.pipeline(transaction=False)
    for key in keys:
        read.dump(key)
        read.pttl(key)
    replies = read.execute()
    present = [(key, replies[2 * i], replies[2 * i + 1]) for i, key in enumerate(keys) if replies[2 * i] is not None]
    write = target.pipeline(transaction=False)
    for key, dumped, ttl in present:
        write.restore(key, max(int(ttl), 0), dumped)
    copied, conflicts = [], []
    for (key, _, _), reply in zip(present, write.execute(raise_on_error=False), strict=True):
        if isinstance(reply, redis.ResponseError):
            if "BUSYKEY" not in str(reply):
                raise reply
            conflicts.append(key)
        else:
            copied.append(key)
    if copied:
        source.delete(*copied)
    return len(copied), conflicts


def _client(admin_url: str, db: int) -> redis.Redis:
    return redis.Redis.from_url(with_db(admin_url, db), socket_timeout=30)


def pending(
    cache_admin_url: str, settings: Settings, patterns: tuple[str, ...] = DEFAULT_PATTERNS
) -> dict[int, list[bytes]]:
    """The keys of the cache instance that belong on the durable one, per database."""
    return {db: _durable_keys(_client(cache_admin_url, db), whole, patterns) for db, whole in _databases(settings)}


def move(
    cache_admin_url: str,
    durable_admin_url: str,
    settings: Settings,
    patterns: tuple[str, ...] = DEFAULT_PATTERNS,
    dry_run: bool = False,
) -> Moved:
    """Move the durable data from the cache instance to the durable one (see the module)."""
    result = Moved()
    for db, keys in pending(cache_admin_url, settings, patterns).items():
        result.found[db], result.moved[db] = len(keys), 0
        if dry_run:
            continue
        source, target = _client(cache_admin_url, db), _client(durable_admin_url, db)
        for start in range(0, len(keys), BATCH):
            moved, conflicts = _move_batch(source, target, keys[start : start + BATCH])
            result.moved[db] += moved
            result.conflicts += [(db, key.decode(errors="replace")) for key in conflicts]
    return result


def pending_count(cache_admin_url: str, settings: Settings, patterns: tuple[str, ...] = DEFAULT_PATTERNS) -> int:
    """How many keys a move would take from the cache instance; 0 only when nothing listens
    there. A cache that cannot be read is not an empty one (LayoutMoveError)."""
    try:
        return sum(len(keys) for keys in pending(cache_admin_url, settings, patterns).values())
    except (redis.RedisError, OSError) as error:
        if is_absent(error):
            return 0
        where = urlsplit(cache_admin_url)
        raise LayoutMoveError(
            refusal(f"the cache instance at {where.hostname}:{where.port}", error, "cannot tell what is left to move")
        ) from None


def leftover_note(cache_admin_url: str, settings: Settings) -> str | None:
    """A note for the user when a split stack's cache still holds services' durable data."""
    waiting = pending_count(cache_admin_url, settings)
    if not waiting:
        return None
    return (
        f"redis:layout = split: {waiting} keys of the broker and result databases, streams and sessions "
        "are on the cache instance, where services no longer look for them; stop producers and workers, "
        f"then move them: bizosaas-redis layout-move --stack {settings.stack}"
    )
