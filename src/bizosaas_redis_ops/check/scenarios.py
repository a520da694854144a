"""The smoke suite's scenarios: what BizOSaaS consumers do, one function each, through the
consumer library. Every key lives under the run's own prefix with a backstop TTL."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

import bizosaas_redis_patterns as patterns
from bizosaas_redis_ops.check import smoke_celery

if TYPE_CHECKING:
    from bizosaas_redis_ops.check.smoke import Run

BACKSTOP_TTL = 300  # seconds: the most any smoke key can outlive an interrupted run


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
            said = smoke_celery.stop_worker(worker)
            raise AssertionError(f"no result from the worker ({exc!r}); worker said: {said.strip()[-300:]}") from None
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
