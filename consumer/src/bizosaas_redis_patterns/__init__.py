"""How BizOSaaS services should use Redis: small reusable building blocks.

The smoke suite exercises these against a deployment; services `pip install` this small
distribution (it needs only redis-py; the embedding cache needs the `numpy` extra).
Every function takes a `KeySpace`, which owns the key names: services give it their
prefix, the smoke suite a per-run prefix that also records every key for cleanup.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis
from redis.sentinel import Sentinel

if TYPE_CHECKING:
    import numpy as np

DEFAULT_CACHE_TTL = 3600
DEFAULT_SESSION_TTL = 86400
# Seconds a Sentinel gets to answer where the primary is.
SENTINEL_TIMEOUT = 1.0


def connect(url: str, master_name: str | None = None, **kwargs: Any) -> redis.Redis:
    """A client for one of the deployment's URLs (`REDIS_URL`, `REDIS_CACHE_URL`, ...).

    `redis://` and `rediss://` connect directly. With topology sentinel the URL is Kombu's
    `sentinel://[user:password@]host:port/db;sentinel://...` and `master_name` is
    `REDIS_MASTER_NAME`: the client asks the Sentinels for the primary
    (`Sentinel(...).master_for(...)`) and asks again when it fails over, so commands after a
    failover reach the new primary. The same password opens the Sentinels.
    """
    if not url.startswith("sentinel://"):
        return redis.Redis.from_url(url, **kwargs)
    if not master_name:
        raise ValueError("a sentinel:// URL needs master_name (REDIS_MASTER_NAME)")
    from urllib.parse import unquote, urlsplit

    parts = [urlsplit(one) for one in url.split(";")]
    first = parts[0]
    username = unquote(first.username) if first.username else None
    password = unquote(first.password) if first.password else None
    db = int(first.path.strip("/") or 0)
    sentinels = [(str(p.hostname), int(p.port or 26379)) for p in parts]
    # redis-py gives Sentinel connections sentinel_kwargs only: without timeouts of their own,
    # asking a Sentinel on a silent host would wait for TCP to give up (a minute or more).
    timeouts = {
        "socket_timeout": kwargs.get("socket_timeout") or SENTINEL_TIMEOUT,
        "socket_connect_timeout": kwargs.get("socket_connect_timeout") or SENTINEL_TIMEOUT,
    }
    # No retry either (redis-py retries a connection 10 times by default): the next Sentinel answers.
    auth = {key: value for key, value in (("username", username), ("password", password)) if value}
    watcher = Sentinel(sentinels, sentinel_kwargs={**auth, **timeouts, "retry": None})
    return watcher.master_for(master_name, db=db, username=username, password=password, **kwargs)


# --- Celery -----------------------------------------------------------------------------

# Celery settings for a worker that carries on by itself through a failover:
# `app.conf.update(CELERY_FAILOVER_SETTINGS)`, with the deployment's
# CELERY_BROKER_TRANSPORT_OPTIONS / CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS.
CELERY_FAILOVER_SETTINGS: dict[str, Any] = {
    # Reconnect for ever, at start and after a lost connection.
    "broker_connection_retry_on_startup": True,
    "broker_connection_retry": True,
    "broker_connection_max_retries": None,
    # READONLY from a demoted primary is a lost connection too.
    "broker_channel_error_retry": True,
    # Storing a result: retry while the primary changes, and give up on a silent one after
    # 5 s, not Celery's 120 (a solo or threads worker waits meanwhile, consuming nothing).
    "result_backend_always_retry": True,
    "result_backend_max_retries": 30,
    "redis_socket_timeout": 5.0,
    "redis_socket_connect_timeout": 2.0,
    "redis_socket_keepalive": True,
    "redis_backend_health_check_interval": 5,
}


# --- durable writes ---------------------------------------------------------------------


class NotDurable(redis.RedisError):
    """The primary took the write but fewer replicas than asked confirmed it in time: a
    failover now could lose it. Treat the write as failed (retry it, or report it)."""


@dataclass(frozen=True)
class Durability:
    """Each write confirmed by `replicas` replicas (Redis's WAIT on the write's own
    connection) within `timeout_ms` before it counts as done; 0 replicas: plain writes.

    Redis replicates asynchronously: a write acknowledged by the primary alone is lost when
    the primary fails or is cut off before a replica has it, and a replica is promoted.
    A write confirmed by one replica survives that: Sentinel promotes the replica with the
    most data (it is still not fsynced on the replica: both failing at once can lose it).
    """

    replicas: int = 0
    timeout_ms: int = 1000

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Durability:
        """From the deployment's `REDIS_WAIT_REPLICAS` and `REDIS_WAIT_TIMEOUT_MS` (plain writes when unset)."""
        env = os.environ if env is None else env
        return cls(int(env.get("REDIS_WAIT_REPLICAS", "0")), int(env.get("REDIS_WAIT_TIMEOUT_MS", "1000")))

    def write(self, client: redis.Redis, build: Callable[[Any], object]) -> list[Any]:
        """Run the commands `build` queues on a pipeline, then WAIT on the same connection;
        their replies, or NotDurable when too few replicas confirmed."""
        pipe = client.pipeline(transaction=False)
        build(pipe)
        if self.replicas:
            pipe.wait(self.replicas, self.timeout_ms)
        replies = list(pipe.execute())
        if self.replicas:
            confirmed = int(replies.pop())
            if confirmed < self.replicas:
                raise NotDurable(
                    f"{confirmed} of {self.replicas} replica(s) confirmed the write within {self.timeout_ms} ms"
                )
        return replies


@dataclass
class KeySpace:
    """Builds key names under a prefix; with `track`, remembers them for cleanup."""

    prefix: str
    track: bool = False
    written: set[str] = field(default_factory=set)

    def key(self, *parts: str) -> str:
        name = self.prefix + ":".join(parts)
        if self.track:
            self.written.add(name)
        return name


def stable_hash(*parts: Any) -> str:
    """A hash that is the same in every process (unlike built-in hash() of a str)."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


# --- caching --------------------------------------------------------------------------


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0


def cached(client: redis.Redis, keys: KeySpace, namespace: str, ttl: int = DEFAULT_CACHE_TTL) -> Callable:
    """Decorator: JSON results cached under a stable key of the arguments, for `ttl` s.

    A cached falsy value ([], 0, "", None) is a hit: presence is tested, not truth.
    """

    def decorate(fn: Callable) -> Callable:
        stats = CacheStats()

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            key = keys.key(namespace, fn.__qualname__, stable_hash(args, kwargs))
            raw = client.get(key)
            if raw is not None:
                stats.hits += 1
                return json.loads(raw)
            stats.misses += 1
            value = fn(*args, **kwargs)
            client.set(key, json.dumps(value), ex=ttl)
            return value

        wrapper.stats = stats  # type: ignore[attr-defined]
        wrapper.key_for = lambda *a, **kw: keys.key(namespace, fn.__qualname__, stable_hash(a, kw))  # type: ignore[attr-defined]
        return wrapper

    return decorate


def cache_query(
    client: redis.Redis, keys: KeySpace, sql: str, params: tuple, run: Callable[[], Any], ttl: int = DEFAULT_CACHE_TTL
) -> tuple[Any, bool]:
    """Database query cache: (rows, hit). The key covers the SQL text and its parameters."""
    key = keys.key("query", stable_hash(sql, params))
    raw = client.get(key)
    if raw is not None:
        return json.loads(raw), True
    rows = run()
    client.set(key, json.dumps(rows), ex=ttl)
    return rows, False


def cache_llm(
    client: redis.Redis,
    keys: KeySpace,
    model: str,
    prompt: str,
    params: dict[str, Any],
    generate: Callable[[], str],
    ttl: int = DEFAULT_CACHE_TTL,
) -> tuple[str, bool]:
    """LLM response cache: (text, hit). Model, prompt and sampling parameters form the key."""
    key = keys.key("llm", model, stable_hash(prompt, params))
    raw = client.get(key)
    if raw is not None:
        return json.loads(raw)["text"], True
    text = generate()
    client.set(key, json.dumps({"text": text, "model": model}), ex=ttl)
    return text, False


def put_embedding(
    client: redis.Redis, keys: KeySpace, text: str, vector: np.ndarray, ttl: int = DEFAULT_CACHE_TTL
) -> str:
    """Store a float32 vector as raw bytes: exact, and 4 bytes a dimension."""
    key = keys.key("embedding", stable_hash(text))
    import numpy as np

    client.set(key, np.asarray(vector, dtype=np.float32).tobytes(), ex=ttl)
    return key


def get_embedding(client: redis.Redis, keys: KeySpace, text: str) -> np.ndarray | None:
    raw = client.get(keys.key("embedding", stable_hash(text)))
    if raw is None:
        return None
    data = raw if isinstance(raw, bytes) else raw.encode("latin-1")
    import numpy as np

    return np.frombuffer(data, dtype=np.float32)


# --- sessions and tokens ----------------------------------------------------------------


class SessionStore:
    """Sessions with a sliding TTL. Writes are durable as `durability` says (default: as the
    deployment's environment says, `Durability.from_env`)."""

    def __init__(
        self,
        client: redis.Redis,
        keys: KeySpace,
        ttl: int = DEFAULT_SESSION_TTL,
        durability: Durability | None = None,
    ):
        self.client, self.keys, self.ttl = client, keys, ttl
        self.durability = durability if durability is not None else Durability.from_env()

    def create(self, data: dict[str, Any]) -> str:
        session_id = secrets.token_urlsafe(24)
        key = self.keys.key("session", session_id)
        self.durability.write(self.client, lambda pipe: pipe.set(key, json.dumps(data), ex=self.ttl))
        return session_id

    def get(self, session_id: str) -> dict[str, Any] | None:
        raw = self.client.get(self.keys.key("session", session_id))
        return None if raw is None else json.loads(raw)

    def refresh(self, session_id: str) -> bool:
        """Sliding expiry: the session lives `ttl` from its last use."""
        return bool(self.client.expire(self.keys.key("session", session_id), self.ttl))

    def delete(self, session_id: str) -> bool:
        """A logout: durable too, or a failover could bring the session back."""
        key = self.keys.key("session", session_id)
        return bool(self.durability.write(self.client, lambda pipe: pipe.delete(key))[0])

    def ttl_of(self, session_id: str) -> int:
        return int(self.client.ttl(self.keys.key("session", session_id)))


class TokenBlacklist:
    """Revoked JWTs by their `jti`, kept exactly until the token would expire anyway."""

    def __init__(self, client: redis.Redis, keys: KeySpace, durability: Durability | None = None):
        self.client, self.keys = client, keys
        self.durability = durability if durability is not None else Durability.from_env()

    def revoke(self, jti: str, exp: int) -> bool:
        """False when the token has expired already: nothing to store. Durable: a revocation
        a failover forgot would let the token in again."""
        if exp <= time.time():
            return False
        key = self.keys.key("jwt-revoked", jti)
        return bool(self.durability.write(self.client, lambda pipe: pipe.set(key, "1", exat=int(exp)))[0])

    def is_revoked(self, jti: str) -> bool:
        return bool(self.client.exists(self.keys.key("jwt-revoked", jti)))


# --- rate limiting ----------------------------------------------------------------------

# INCR first, then compare: atomic, so N concurrent clients can never exceed the limit
# (reading with GET and incrementing afterwards lets two clients both see limit-1).
RATE_LIMIT_LUA = """
local current = redis.call('INCR', KEYS[1])
if current == 1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if current > tonumber(ARGV[1]) then
  return 0
end
return 1
"""


class RateLimiter:
    """Fixed-window limiter: at most `limit` calls per `window_ms` per identity."""

    def __init__(self, client: redis.Redis, keys: KeySpace, limit: int, window_ms: int):
        self.client, self.keys, self.limit, self.window_ms = client, keys, limit, window_ms
        self.script = client.register_script(RATE_LIMIT_LUA)

    def allow(self, identity: str, client: redis.Redis | None = None) -> bool:
        key = self.keys.key("ratelimit", identity)
        return bool(self.script(keys=[key], args=[self.limit, self.window_ms], client=client or self.client))


# --- streams ----------------------------------------------------------------------------


class EventStream:
    """Redis Streams with a consumer group: at-least-once, claims from dead consumers,
    and a dead-letter stream for events that keep failing."""

    def __init__(
        self,
        client: redis.Redis,
        keys: KeySpace,
        name: str,
        group: str,
        maxlen: int = 10_000,
        max_deliveries: int = 3,
        durability: Durability | None = None,
    ):
        self.client = client
        self.durability = durability if durability is not None else Durability.from_env()
        self.stream = keys.key("stream", name)
        self.dead_letter = keys.key("stream", name, "dead-letter")
        self.group, self.maxlen, self.max_deliveries = group, maxlen, max_deliveries

    def publish(self, event: dict[str, Any]) -> str:
        """Durable as `durability` says: an event a failover dropped would never be read."""
        fields = {"data": json.dumps(event)}
        # Approximate trimming (~) keeps XADD O(1): whole macro-nodes are dropped.
        [entry_id] = self.durability.write(
            self.client, lambda pipe: pipe.xadd(self.stream, fields, maxlen=self.maxlen, approximate=True)
        )
        return str(entry_id.decode() if isinstance(entry_id, bytes) else entry_id)

    def ensure_group(self) -> None:
        """Create the group (and stream) once; a second call is a no-op."""
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, consumer: str, count: int = 10, block_ms: int | None = None) -> list[tuple[str, dict]]:
        reply: Any = self.client.xreadgroup(self.group, consumer, {self.stream: ">"}, count=count, block=block_ms)
        return [(entry_id, json.loads(fields["data"])) for _, entries in reply or [] for entry_id, fields in entries]

    def ack(self, *entry_ids: str) -> int:
        return int(self.client.xack(self.stream, self.group, *entry_ids))

    def claim_stale(self, consumer: str, min_idle_ms: int, count: int = 100) -> list[tuple[str, dict]]:
        """Take over entries another consumer read but never acknowledged."""
        _, entries, _ = self.client.xautoclaim(self.stream, self.group, consumer, min_idle_ms, "0-0", count=count)
        return [(entry_id, json.loads(fields["data"])) for entry_id, fields in entries if fields]

    def deliveries(self, entry_id: str) -> int:
        pending = self.client.xpending_range(self.stream, self.group, entry_id, entry_id, 1)
        return int(pending[0]["times_delivered"]) if pending else 0

    def fail(self, entry_id: str, event: dict[str, Any], error: str) -> bool:
        """After a failed attempt: move to the dead-letter stream once the budget is spent."""
        if self.deliveries(entry_id) < self.max_deliveries:
            return False  # stays pending: a later claim retries it
        self.client.xadd(
            self.dead_letter,
            {"data": json.dumps(event), "error": error, "id": entry_id},
            maxlen=self.maxlen,
            approximate=True,
        )
        self.ack(entry_id)
        return True

    def pending_count(self) -> int:
        return int(self.client.xpending(self.stream, self.group)["pending"])


# --- the rest -----------------------------------------------------------------------------


def health_check(client: redis.Redis, keys: KeySpace, ttl: int = 30) -> float:
    """PING, a write and a read back with a TTL; returns the round trip in ms."""
    start = time.perf_counter()
    if not client.ping():
        raise RuntimeError("PING failed")
    key = keys.key("health", secrets.token_hex(4))
    value = secrets.token_hex(8)
    client.set(key, value, ex=ttl)
    if client.get(key) not in (value, value.encode()):
        raise RuntimeError("read back a different value")
    if not 0 < client.ttl(key) <= ttl:
        raise RuntimeError("TTL not applied")
    return (time.perf_counter() - start) * 1000
