"""Post-deploy smoke suite: what BizOSaaS consumers do, against the real deployment.

Safe in production: every key lives under `smoke:<run-id>:` in the stack's databases,
gets a short TTL as a backstop, and is deleted at the end, also when a scenario fails or
the run is interrupted. The suite never flushes, never scans, and never touches a key it
did not create.
"""

from __future__ import annotations

import secrets
import socket
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

import bizosaas_redis_patterns as patterns
from bizosaas_redis.connection import with_db
from bizosaas_redis.constants import (
    DEFAULT_BROKER_DB,
    DEFAULT_CACHE_DB,
    DEFAULT_CACHE_TTL,
    DEFAULT_RESULT_DB,
    DEFAULT_SESSION_TTL,
    DEFAULT_STREAM_MAXLEN,
)
from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis_ops import tables
from bizosaas_redis_ops.check import smoke_celery
from bizosaas_redis_patterns import KeySpace

BACKSTOP_TTL = 300  # seconds: the most any smoke key can outlive an interrupted run


class SmokeError(BizosaasRedisError):
    """A one-line reason the suite could not run at all."""

    exit_code = 2


@dataclass
class Target:
    url: str  # secret: never printed
    cache_db: int = DEFAULT_CACHE_DB
    broker_db: int = DEFAULT_BROKER_DB
    result_db: int = DEFAULT_RESULT_DB
    cache_ttl: int = DEFAULT_CACHE_TTL
    session_ttl: int = DEFAULT_SESSION_TTL
    stream_maxlen: int = DEFAULT_STREAM_MAXLEN
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    role: str = "shared"  # what the instance holds: shared, cache or durable (stack outputs)

    @property
    def safe_address(self) -> str:
        parts = urlsplit(self.url)
        return f"{parts.hostname}:{parts.port or 6379}"

    def url_for_db(self, db: int) -> str:
        return with_db(self.url, db)

    @classmethod
    def for_url(cls, url: str, broker_db: int | None = None, result_db: int | None = None) -> Target:
        """A target from a URL alone; its /db is the cache database."""
        parts = urlsplit(url)
        if "://" not in url or parts.scheme not in ("redis", "rediss") or not parts.hostname:
            # The URL may hold a password: name only its scheme.
            given = f"scheme {parts.scheme}://" if "://" in url else "no scheme"
            raise SmokeError(f"--url has {given}: want redis[s]://[user:password@]host:port[/db]")
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise SmokeError(f"--url database {path!r}: want a number, e.g. redis://host:6379/0")
        try:
            parts.port  # noqa: B018 (raises on a bad port)
        except ValueError:
            raise SmokeError("--url port: want a number from 1 to 65535") from None
        return cls(
            url=url,
            cache_db=int(path or DEFAULT_CACHE_DB),
            broker_db=DEFAULT_BROKER_DB if broker_db is None else broker_db,
            result_db=DEFAULT_RESULT_DB if result_db is None else result_db,
        )

    @classmethod
    def from_outputs(cls, outputs: dict[str, Any]) -> Target:
        env = outputs.get("consumer_env", {})
        return cls(
            url=outputs["redis_url"],
            cache_db=int(outputs.get("cache_db", DEFAULT_CACHE_DB)),
            broker_db=int(outputs.get("celery_broker_db", DEFAULT_BROKER_DB)),
            result_db=int(outputs.get("celery_result_db", DEFAULT_RESULT_DB)),
            cache_ttl=int(env.get("REDIS_CACHE_TTL", DEFAULT_CACHE_TTL)),
            session_ttl=int(env.get("REDIS_SESSION_TTL", DEFAULT_SESSION_TTL)),
            stream_maxlen=int(env.get("REDIS_STREAM_MAXLEN", DEFAULT_STREAM_MAXLEN)),
            role=str(outputs.get("role", "shared")),
        )


@dataclass
class Result:
    scenario: str
    passed: bool
    seconds: float
    reason: str = ""


class Run:
    """One run: its prefix, its clients per database, and every key it wrote."""

    def __init__(self, target: Target, run_id: str | None = None):
        self.target = target
        self.run_id = run_id or f"{time.strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(3)}"
        self.prefix = f"smoke:{self.run_id}:"
        self.keyspaces: dict[int, KeySpace] = {}
        self._clients: dict[tuple[int, bool], redis.Redis] = {}

    def keys(self, db: int | None = None) -> KeySpace:
        db = self.target.cache_db if db is None else db
        return self.keyspaces.setdefault(db, KeySpace(self.prefix, track=True))

    def client(self, db: int | None = None, decode: bool = True) -> redis.Redis:
        db = self.target.cache_db if db is None else db
        if (db, decode) not in self._clients:
            self._clients[(db, decode)] = self.new_client(db, decode)
        return self._clients[(db, decode)]

    def new_client(self, db: int | None = None, decode: bool = True) -> redis.Redis:
        db = self.target.cache_db if db is None else db
        kwargs: dict[str, Any] = {}
        if self.target.url.startswith("rediss://"):
            kwargs.update(
                ssl_ca_certs=self.target.ssl_ca_certs,
                ssl_certfile=self.target.ssl_certfile,
                ssl_keyfile=self.target.ssl_keyfile,
                ssl_check_hostname=False,
            )
        return redis.Redis.from_url(
            self.target.url_for_db(db),
            decode_responses=decode,
            socket_timeout=10,
            socket_connect_timeout=5,
            retry=Retry(NoBackoff(), 0),
            **kwargs,
        )

    def backstop(self) -> None:
        """Shorten every written key's TTL to BACKSTOP_TTL (LT: never lengthen one)."""
        for db, keyspace in self.keyspaces.items():
            pipe = self.client(db).pipeline(transaction=False)
            for key in keyspace.written:
                pipe.expire(key, BACKSTOP_TTL, lt=True)
            pipe.execute()

    def cleanup(self, attempts: int = 3) -> int:
        """Delete exactly the keys this run wrote; returns how many existed.

        Checked again afterwards: a client shutting down (Celery's) may still re-declare one.
        """
        removed = 0
        for attempt in range(attempts):
            left = 0
            for db, keyspace in self.keyspaces.items():
                names = sorted(keyspace.written)
                for start in range(0, len(names), 500):
                    removed += int(self.client(db).delete(*names[start : start + 500]))
                left += int(self.client(db).exists(*names)) if names else 0
            if not left:
                break
            time.sleep(0.2 * (attempt + 1))
        return removed

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


# --- scenarios ------------------------------------------------------------------------


def check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def scenario_health(run: Run) -> None:
    patterns.health_check(run.client(), run.keys())


def scenario_role(run: Run) -> None:
    """The instance's eviction policy fits what it holds (a split stack's two instances)."""
    policy = run.client().info("memory")["maxmemory_policy"]
    if run.target.role == "durable":
        check(policy == "noeviction", f"the durable instance runs {policy}: it would evict queues and sessions")
    elif run.target.role == "cache":
        check(policy != "noeviction", "the cache instance runs noeviction: when full it refuses writes, not evicts")


def scenario_api_cache(run: Run) -> None:
    calls = []

    @patterns.cached(run.client(), run.keys(), "api", ttl=run.target.cache_ttl)
    def get_tenant(tenant_id: int, fields: tuple = ("name",)) -> dict:
        calls.append(tenant_id)
        return {"id": tenant_id, "name": f"tenant-{tenant_id}", "plan": None, "tags": ["a", "b"], "score": 1.5}

    first, second = get_tenant(7), get_tenant(7)
    check(first == second and len(calls) == 1, f"miss then hit expected, function ran {len(calls)} times")
    check(get_tenant.stats.hits == 1 and get_tenant.stats.misses == 1, "hit/miss counts wrong")
    ttl = run.client().ttl(get_tenant.key_for(7))
    check(run.target.cache_ttl - 5 <= ttl <= run.target.cache_ttl, f"TTL {ttl}, expected {run.target.cache_ttl}")

    empty_calls = []

    @patterns.cached(run.client(), run.keys(), "api", ttl=run.target.cache_ttl)
    def list_invoices(tenant_id: int) -> list:
        empty_calls.append(tenant_id)
        return []

    @patterns.cached(run.client(), run.keys(), "api", ttl=run.target.cache_ttl)
    def unread_count(tenant_id: int) -> int:
        empty_calls.append(tenant_id)
        return 0

    check(list_invoices(1) == [] and list_invoices(1) == [], "empty list not round-tripped")
    check(unread_count(1) == 0 and unread_count(1) == 0, "zero not round-tripped")
    check(len(empty_calls) == 2, "a cached falsy value was treated as a miss")


def scenario_db_query_cache(run: Run) -> None:
    executed = []
    sql, params = "SELECT id, total FROM invoices WHERE tenant_id = %s", (42,)

    def query() -> list:
        executed.append(1)
        return [[1, 9.5], [2, 0]]

    rows1, hit1 = patterns.cache_query(run.client(), run.keys(), sql, params, query, ttl=run.target.cache_ttl)
    rows2, hit2 = patterns.cache_query(run.client(), run.keys(), sql, params, query, ttl=run.target.cache_ttl)
    check(not hit1 and hit2 and rows1 == rows2 == [[1, 9.5], [2, 0]], "query cache miss/hit or rows wrong")
    _, hit3 = patterns.cache_query(run.client(), run.keys(), sql, (43,), query, ttl=run.target.cache_ttl)
    check(not hit3 and len(executed) == 2, "different parameters must miss")


def scenario_llm_cache(run: Run) -> None:
    generated = []

    def generate() -> str:
        generated.append(1)
        return "Bonjour ✓"

    args = ("gpt-x", "Say hello in French", {"temperature": 0})
    text1, hit1 = patterns.cache_llm(run.client(), run.keys(), *args, generate, ttl=run.target.cache_ttl)
    text2, hit2 = patterns.cache_llm(run.client(), run.keys(), *args, generate, ttl=run.target.cache_ttl)
    check((hit1, hit2) == (False, True) and text1 == text2 == "Bonjour ✓", "LLM cache miss/hit or text wrong")
    _, hit3 = patterns.cache_llm(run.client(), run.keys(), "gpt-x", args[1], {"temperature": 1}, generate)
    check(not hit3 and len(generated) == 2, "different sampling parameters must miss")


def scenario_embedding_cache(run: Run) -> None:
    vector = np.random.default_rng(7).standard_normal(1536).astype(np.float32)
    vector[:3] = [np.float32(0.1), np.float32(-0.0), np.finfo(np.float32).tiny]
    raw = run.client(decode=False)
    patterns.put_embedding(raw, run.keys(), "the quick brown fox", vector, ttl=run.target.cache_ttl)
    back = patterns.get_embedding(raw, run.keys(), "the quick brown fox")
    check(back is not None and back.dtype == np.float32, "embedding missing or wrong dtype")
    assert back is not None
    check(np.array_equal(back.view(np.uint32), vector.view(np.uint32)), "embedding not bit-exact")
    check(patterns.get_embedding(raw, run.keys(), "never stored") is None, "missing embedding not None")


def scenario_sessions(run: Run) -> None:
    store = patterns.SessionStore(run.client(), run.keys(), ttl=run.target.session_ttl)
    session_id = store.create({"user_id": 5, "tenant": "acme", "roles": ["admin"]})
    check(store.get(session_id) == {"user_id": 5, "tenant": "acme", "roles": ["admin"]}, "session data wrong")
    check(store.ttl_of(session_id) > run.target.session_ttl - 5, "session TTL not applied")
    run.client().expire(run.keys().key("session", session_id), 60)  # as if 23 h 59 min had passed
    check(store.refresh(session_id) and store.ttl_of(session_id) > run.target.session_ttl - 5, "refresh failed")
    check(store.delete(session_id) and store.get(session_id) is None, "delete failed")
    check(store.get("no-such-session") is None and not store.refresh("no-such-session"), "missing session")


def scenario_jwt_blacklist(run: Run) -> None:
    blacklist = patterns.TokenBlacklist(run.client(), run.keys())
    now = int(time.time())
    check(blacklist.revoke("jti-live", now + 600), "revoking a live token failed")
    check(blacklist.is_revoked("jti-live"), "revoked token not reported")
    ttl = run.client().ttl(run.keys().key("jwt-revoked", "jti-live"))
    check(590 <= ttl <= 600, f"revocation must last until exp, TTL {ttl}")
    check(not blacklist.revoke("jti-expired", now - 1), "an expired token was stored")
    check(not run.client().exists(run.keys().key("jwt-revoked", "jti-expired")), "expired token stored")
    check(not blacklist.is_revoked("jti-never"), "unknown token reported revoked")


def scenario_celery(run: Run) -> None:
    queue = f"{run.prefix}q"
    prefix = run.prefix
    broker_url, result_url = run.target.url_for_db(run.target.broker_db), run.target.url_for_db(run.target.result_db)
    for key in smoke_celery.broker_keys(prefix, queue):
        run.keys(run.target.broker_db).written.add(key)
    app = smoke_celery.make_app(broker_url, result_url, prefix, queue)
    worker = smoke_celery.start_worker(broker_url, result_url, prefix, queue)
    try:
        async_result = app.send_task("smoke.add", args=(2, 3), queue=queue)
        run.keys(run.target.result_db).written.add(smoke_celery.result_key(prefix, async_result.id))
        try:
            value = async_result.get(timeout=30)
        except Exception as exc:
            worker.terminate()
            _, err = worker.communicate(timeout=10)
            raise AssertionError(f"no result from the worker ({exc!r}); worker said: {err.strip()[-300:]}") from None
        check(value == 5, f"task returned {value!r}")
    finally:
        smoke_celery.stop_worker(worker)
        app.close()


def scenario_streams(run: Run) -> None:
    client = run.client()
    # Trimming: approximate MAXLEN keeps the stream near its bound.
    trimmed = patterns.EventStream(client, run.keys(), "trim", "g", maxlen=100)
    pipe = client.pipeline(transaction=False)
    for i in range(1000):
        pipe.xadd(trimmed.stream, {"data": str(i)}, maxlen=100, approximate=True)
    pipe.execute()
    length = client.xlen(trimmed.stream)
    check(100 <= length < 300, f"approximate trimming left {length} entries")

    events = patterns.EventStream(client, run.keys(), "orders", "billing", maxlen=run.target.stream_maxlen)
    events.ensure_group()
    events.ensure_group()  # idempotent
    published = {events.publish({"order": i}) for i in range(10)}
    client.expire(events.stream, BACKSTOP_TTL)

    dead_consumer_got = events.read("worker-a", count=4)  # reads, then "dies" without XACK
    check(len(dead_consumer_got) == 4 and events.pending_count() == 4, "first read wrong")
    claimed = events.claim_stale("worker-b", min_idle_ms=0)
    check({e for e, _ in claimed} == {e for e, _ in dead_consumer_got}, "stale entries not claimed")
    events.ack(*[e for e, _ in claimed])
    rest = events.read("worker-b", count=100)
    events.ack(*[e for e, _ in rest])
    processed = {e for e, _ in claimed} | {e for e, _ in rest}
    check(processed == published and events.pending_count() == 0, "an event was lost or left pending")

    poison = events.publish({"order": "poison"})
    entries = events.read("worker-b", count=1)
    attempts = 0
    while True:
        attempts += 1
        entry_id, event = entries[0]
        if events.fail(entry_id, event, "cannot parse order"):
            break
        entries = events.claim_stale("worker-b", min_idle_ms=0)
        check(attempts < 10 and bool(entries), "poison event never dead-lettered")
    check(attempts == events.max_deliveries, f"dead-lettered after {attempts} attempts")
    dead: Any = client.xrange(events.dead_letter)
    client.expire(events.dead_letter, BACKSTOP_TTL)
    check(len(dead) == 1 and dead[0][1]["id"] == poison, "dead-letter stream wrong")
    check(events.pending_count() == 0, "poison event still pending")


def scenario_pubsub(run: Run) -> None:
    channel = run.keys().key("notifications")  # a channel name, not a key: nothing stored
    subscriber = run.new_client()
    pubsub = subscriber.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(channel)
        pubsub.get_message(timeout=1)
        receivers = run.client().publish(channel, '{"type": "invoice.paid"}')
        check(receivers >= 1, "no subscriber received the publish")
        message = None
        deadline = time.monotonic() + 5
        while message is None and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=0.5)
        check(message is not None and message["data"] == '{"type": "invoice.paid"}', "message not received")
    finally:
        pubsub.close()
        subscriber.close()


def scenario_rate_limiter(run: Run) -> None:
    limiter = patterns.RateLimiter(run.client(), run.keys(), limit=100, window_ms=60_000)
    allowed = []
    lock = threading.Lock()
    errors = []

    def client_thread() -> None:
        own = run.new_client()
        try:
            for _ in range(10):
                ok = limiter.allow("tenant-1", client=own)
                with lock:
                    allowed.append(ok)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=client_thread) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    check(not errors, f"limiter errors: {errors[:1]}")
    check(len(allowed) == 200 and sum(allowed) == 100, f"{sum(allowed)} of {len(allowed)} allowed, expected 100")


def scenario_leaderboard(run: Run) -> None:
    client, key = run.client(), run.keys().key("leaderboard")
    scores = {f"player-{i}": (i * 37) % 101 for i in range(50)}
    client.zadd(key, scores)
    client.expire(key, BACKSTOP_TTL)
    client.zincrby(key, 1000, "player-3")
    top: Any = client.zrevrange(key, 0, 2, withscores=True)
    expected = sorted({**scores, "player-3": scores["player-3"] + 1000}.items(), key=lambda kv: (-kv[1], kv[0]))
    check(top[0][0] == "player-3", "ZINCRBY did not move the player to the top")
    check([s for _, s in top] == [float(s) for _, s in expected[:3]], "top scores wrong")
    check(client.zrevrank(key, "player-3") == 0, "rank wrong")


def scenario_hyperloglog(run: Run) -> None:
    client, key = run.client(), run.keys().key("unique-visitors")
    pipe = client.pipeline(transaction=False)
    for start in range(0, 10_000, 1000):
        pipe.pfadd(key, *[f"visitor-{i}" for i in range(start, start + 1000)])
    pipe.pfadd(key, *[f"visitor-{i}" for i in range(500)])  # repeat visits do not count
    pipe.expire(key, BACKSTOP_TTL)
    pipe.execute()
    count = client.pfcount(key)
    check(abs(count - 10_000) <= 200, f"HyperLogLog counted {count}, more than 2 % off 10000")


def scenario_bitmaps(run: Run) -> None:
    client = run.client()
    monday, tuesday = run.keys().key("active", "2026-11-23"), run.keys().key("active", "2026-11-24")
    pipe = client.pipeline(transaction=False)
    for user_id in range(0, 1000, 3):
        pipe.setbit(monday, user_id, 1)
    for user_id in range(0, 1000, 5):
        pipe.setbit(tuesday, user_id, 1)
    pipe.expire(monday, BACKSTOP_TTL)
    pipe.expire(tuesday, BACKSTOP_TTL)
    pipe.execute()
    both = run.keys().key("active", "both")
    client.bitop("AND", both, monday, tuesday)
    client.expire(both, BACKSTOP_TTL)
    check(client.bitcount(monday) == 334 and client.bitcount(tuesday) == 200, "daily active counts wrong")
    check(client.bitcount(both) == 67, f"retained users {client.bitcount(both)}, expected 67")
    check(client.getbit(monday, 999) == 1 and client.getbit(monday, 998) == 0, "GETBIT wrong")


SCENARIOS: list[tuple[str, Callable[[Run], None]]] = [
    ("health check", scenario_health),
    ("eviction fits the role", scenario_role),
    ("api response cache", scenario_api_cache),
    ("db query cache", scenario_db_query_cache),
    ("llm response cache", scenario_llm_cache),
    ("embedding cache", scenario_embedding_cache),
    ("sessions", scenario_sessions),
    ("jwt blacklist", scenario_jwt_blacklist),
    ("celery task round trip", scenario_celery),
    ("streams consumer group", scenario_streams),
    ("pub/sub notification", scenario_pubsub),
    ("rate limiter (lua)", scenario_rate_limiter),
    ("leaderboard", scenario_leaderboard),
    ("hyperloglog", scenario_hyperloglog),
    ("bitmaps", scenario_bitmaps),
]


# What a split stack keeps on its durable instance; the rest goes to the cache.
DURABLE_SCENARIOS = {"sessions", "jwt blacklist", "celery task round trip", "streams consumer group"}
BOTH_INSTANCES = {"health check", "eviction fits the role"}


def scenarios_for(use: str) -> list[tuple[str, Callable[[Run], None]]]:
    """The scenarios a split stack's `cache` or `durable` instance serves, as services use them."""
    return [
        (name, fn)
        for name, fn in SCENARIOS
        if name in BOTH_INSTANCES or (name in DURABLE_SCENARIOS) == (use == "durable")
    ]


# --- running ----------------------------------------------------------------------------


def explain(exc: BaseException, target: Target) -> str:
    """One line that says what is wrong and what to check."""
    text = str(exc)
    where = target.safe_address
    if isinstance(exc, redis.AuthenticationError) or "WRONGPASS" in text or "NOAUTH" in text or "HELLO" in text:
        return f"authentication failed at {where}: check the password in the URL (redis_url output)"
    if isinstance(exc, redis.ReadOnlyError) or text.startswith("READONLY"):
        return f"{where} is a read-only replica: point the URL at the primary"
    if isinstance(exc, redis.OutOfMemoryError) or text.startswith("OOM"):
        return f"{where} is out of memory (maxmemory reached, policy refuses writes): check redis:maxmemoryPolicy"
    if isinstance(exc, ssl.SSLError) or "SSL" in text or "TLS" in text:
        return f"TLS mismatch at {where}: the server does not speak TLS (use redis://) or the CA is wrong"
    if isinstance(exc, redis.TimeoutError | socket.timeout):
        return f"{where} timed out: check the address, the firewall and that the container is healthy"
    if isinstance(exc, redis.ConnectionError):
        if "Connection refused" in text or "Errno 111" in text:
            return f"cannot connect to {where}: connection refused; is the container running and the port published?"
        if "Connection closed" in text or "reset" in text.lower():
            return f"{where} closed the connection: TLS mismatch? (the server may require rediss://)"
        return f"cannot connect to {where}: {text.splitlines()[0] if text else type(exc).__name__}"
    if isinstance(exc, redis.ResponseError):
        return f"{where} refused a command: {text.splitlines()[0]}"
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


def preflight(run: Run) -> None:
    """Reach, authenticate, write and delete once, or stop with one line."""
    try:
        client = run.client()
        client.ping()
        key = run.keys().key("preflight")
        client.set(key, "1", ex=BACKSTOP_TTL)
        client.delete(key)
    except (redis.RedisError, OSError) as exc:
        raise SmokeError(explain(exc, run.target)) from None


def run_suite(
    target: Target,
    scenarios: list[tuple[str, Callable[[Run], None]]] | None = None,
    run_id: str | None = None,
    only: set[str] | None = None,
) -> tuple[Run, list[Result]]:
    """Run the scenarios; always clean up. Raises SmokeError when the server is unusable."""
    run = Run(target, run_id)
    results: list[Result] = []
    failure: BaseException | None = None
    try:
        preflight(run)
        for name, fn in scenarios if scenarios is not None else SCENARIOS:
            if only and name not in only:
                continue
            start = time.perf_counter()
            try:
                fn(run)
                results.append(Result(name, True, time.perf_counter() - start))
            except Exception as exc:  # a failing scenario is a result, not a crash
                reason = str(exc) if isinstance(exc, AssertionError) else explain(exc, target)
                results.append(Result(name, False, time.perf_counter() - start, reason.splitlines()[0][:200]))
            finally:
                run.backstop()
    except BaseException as exc:
        failure = exc
        raise
    finally:
        try:
            run.cleanup()
        except (redis.RedisError, OSError) as exc:
            # Behind another error (say, a read-only replica) that one says more.
            if failure is None:
                raise SmokeError(
                    f"cleanup failed ({explain(exc, target)}); keys under {run.prefix} expire within {BACKSTOP_TTL} s"
                ) from None
        finally:
            run.close()
    return run, results


def run_stack(
    targets: dict[str, Target], run_id: str | None = None, only: set[str] | None = None
) -> tuple[list[Run], list[Result]]:
    """Every scenario against the instance that serves it: one run for a single stack, one
    per instance for a split one (its rows marked with the instance)."""
    if targets["cache"].url == targets["durable"].url:
        run, results = run_suite(targets["cache"], run_id=run_id, only=only)
        return [run], results
    runs, rows = [], []
    for use, target in targets.items():
        run, results = run_suite(target, scenarios_for(use), run_id=run_id, only=only)
        runs.append(run)
        rows += [Result(f"{r.scenario} [{use}]", r.passed, r.seconds, r.reason) for r in results]
    return runs, rows


def table(results: list[Result]) -> str:
    failed = sum(not r.passed for r in results)
    return tables.render(
        ["scenario", "result", "time", "reason"],
        [[r.scenario, "PASS" if r.passed else "FAIL", f"{r.seconds * 1000:5.0f}ms", r.reason] for r in results],
        footer=f"{len(results) - failed} passed, {failed} failed",
    )


def junit_xml(results: list[Result], suite_name: str = "redis-smoke") -> str:
    suite = ET.Element(
        "testsuite",
        name=suite_name,
        tests=str(len(results)),
        failures=str(sum(not r.passed for r in results)),
        time=f"{sum(r.seconds for r in results):.3f}",
    )
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=suite_name, name=r.scenario, time=f"{r.seconds:.3f}")
        if not r.passed:
            ET.SubElement(case, "failure", message=r.reason).text = r.reason
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)
