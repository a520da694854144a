"""The consumer library against a real redis-server, as a service uses it.

tests/unit/test_consumer_range.py runs this file with the lowest redis-py the library allows
and with the newest, each in an environment of its own."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
import redis

import bizosaas_redis_patterns as patterns
from conftest import OPEN, Server


def test_cache_keys_are_stable_across_processes_unlike_builtin_hash() -> None:
    code = "import bizosaas_redis_patterns as p; print(p.stable_hash('t', 7, {'b': 1, 'a': 2})); print(hash('t'))"

    def run(seed: str) -> list[str]:
        env = {"PYTHONHASHSEED": seed}
        return subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        ).stdout.split()

    first, second = run("1"), run("2")
    assert first[0] == second[0] == patterns.stable_hash("t", 7, {"a": 2, "b": 1})
    assert first[1] != second[1], "built-in hash() of a str differs between processes"


def test_cached_counts_hits_and_keeps_the_ttl(client: redis.Redis) -> None:
    keys, calls = patterns.KeySpace("t:"), []

    @patterns.cached(client, keys, "api", ttl=60)
    def lookup(x: int) -> list[int]:
        calls.append(x)
        return [x, x]

    assert lookup(1) == [1, 1] and lookup(1) == [1, 1] and lookup(2) == [2, 2]
    assert calls == [1, 2] and (lookup.stats.hits, lookup.stats.misses) == (1, 2)
    assert 0 < client.ttl(lookup.key_for(1)) <= 60


def test_cached_none_is_a_hit(client: redis.Redis) -> None:
    keys, calls = patterns.KeySpace("t:"), []

    @patterns.cached(client, keys, "api", ttl=60)
    def lookup(x: int) -> None:
        calls.append(x)

    assert lookup(1) is None and lookup(1) is None
    assert calls == [1] and lookup.stats.hits == 1


def test_query_and_llm_caches_key_on_everything_that_changes_the_answer(client: redis.Redis) -> None:
    keys = patterns.KeySpace("t:")
    assert patterns.cache_query(client, keys, "select ?", (1,), lambda: [[1]]) == ([[1]], False)
    assert patterns.cache_query(client, keys, "select ?", (1,), lambda: [[9]]) == ([[1]], True)
    assert patterns.cache_query(client, keys, "select ?", (2,), lambda: [[2]]) == ([[2]], False)
    ask = patterns.cache_llm
    assert ask(client, keys, "m", "hi", {"t": 0}, lambda: "hello") == ("hello", False)
    assert ask(client, keys, "m", "hi", {"t": 0}, lambda: "other") == ("hello", True)
    assert ask(client, keys, "m", "hi", {"t": 1}, lambda: "warmer") == ("warmer", False)


def test_embeddings_come_back_bit_for_bit(start_server: Callable[..., Server]) -> None:
    raw = start_server(OPEN).client(decode_responses=False)
    keys = patterns.KeySpace("t:")
    vector = np.random.default_rng(7).standard_normal(384).astype(np.float32)
    patterns.put_embedding(raw, keys, "a text", vector)
    found = patterns.get_embedding(raw, keys, "a text")
    assert found is not None and found.dtype == np.float32 and np.array_equal(found, vector)
    assert patterns.get_embedding(raw, keys, "another text") is None


def test_sessions_slide_and_end(client: redis.Redis) -> None:
    sessions = patterns.SessionStore(client, patterns.KeySpace("t:"), ttl=100, durability=patterns.Durability(0))
    session = sessions.create({"user": 7})
    assert sessions.get(session) == {"user": 7}
    client.expire(f"t:session:{session}", 10)
    assert sessions.refresh(session) and 90 < sessions.ttl_of(session) <= 100
    assert sessions.delete(session) and sessions.get(session) is None and not sessions.refresh(session)


def test_revoked_token_is_forgotten_at_exp(client: redis.Redis) -> None:
    blacklist = patterns.TokenBlacklist(client, patterns.KeySpace("t:"), durability=patterns.Durability(0))
    assert not blacklist.revoke("jti-0", int(time.time()) - 1), "an expired token needs no entry"
    exp = int(time.time()) + 2
    assert blacklist.revoke("jti-1", exp) and blacklist.is_revoked("jti-1")
    time.sleep(max(0.0, exp - time.time()) + 0.2)
    assert not blacklist.is_revoked("jti-1")


def test_rate_limiter_holds_under_concurrency_and_resets(client: redis.Redis) -> None:
    limiter = patterns.RateLimiter(client, patterns.KeySpace("t:"), limit=50, window_ms=2000)
    allowed: list[bool] = []
    lock = threading.Lock()

    def burst() -> None:
        for _ in range(20):
            result = limiter.allow("u")
            with lock:
                allowed.append(result)

    threads = [threading.Thread(target=burst) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 50 and len(allowed) == 100
    short = patterns.RateLimiter(client, patterns.KeySpace("s:"), limit=3, window_ms=300)
    assert [short.allow("u") for _ in range(5)] == [True, True, True, False, False]
    time.sleep(0.4)
    assert short.allow("u")


def test_stream_delivers_at_least_once_and_dead_letters(client: redis.Redis) -> None:
    stream = patterns.EventStream(
        client, patterns.KeySpace("t:"), "orders", "billing", max_deliveries=2, durability=patterns.Durability(0)
    )
    stream.ensure_group()
    stream.ensure_group()  # a second call is a no-op
    first = stream.publish({"order": 1})
    assert stream.read("worker-a") == [(first, {"order": 1})]
    assert stream.pending_count() == 1 and stream.deliveries(first) == 1
    assert not stream.fail(first, {"order": 1}, "boom"), "one delivery of two: stays pending"
    time.sleep(0.02)
    assert stream.claim_stale("worker-b", min_idle_ms=10) == [(first, {"order": 1})]
    assert stream.deliveries(first) == 2 and stream.fail(first, {"order": 1}, "boom again")
    assert stream.pending_count() == 0
    [(_, dead)] = client.xrange("t:stream:orders:dead-letter")
    assert dead["id"] == first and dead["error"] == "boom again"
    second = stream.publish({"order": 2})
    assert stream.read("worker-a", block_ms=100) == [(second, {"order": 2})] and stream.ack(second) == 1


def test_health_check_round_trip(client: redis.Redis) -> None:
    assert 0 < patterns.health_check(client, patterns.KeySpace("t:")) < 1000


def test_keyspace_tracks_only_when_asked() -> None:
    plain, tracked = patterns.KeySpace("svc:"), patterns.KeySpace("smoke:1:", track=True)
    assert plain.key("a", "b") == "svc:a:b" and plain.written == set()
    tracked.key("x")
    assert tracked.written == {"smoke:1:x"}


def _replicated_pair(start_server: Callable[..., Server]) -> tuple[Server, Server]:
    """A primary and a replica of it (DEBUG on, to make the replica stall), linked."""
    primary = start_server(OPEN + "repl-diskless-sync-delay 0\n")
    replica = start_server(OPEN + f"enable-debug-command yes\nreplicaof 127.0.0.1 {primary.port}\n")
    deadline = time.monotonic() + 10
    while replica.client().info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, "the replica did not link to the primary"
        time.sleep(0.05)
    return primary, replica


def test_durable_writes_are_on_a_replica_when_they_return(start_server: Callable[..., Server]) -> None:
    primary, replica = _replicated_pair(start_server)
    durable = patterns.Durability(replicas=1, timeout_ms=2000)
    keys = patterns.KeySpace("d:")
    sessions = patterns.SessionStore(primary.client(), keys, durability=durable)
    session = sessions.create({"user": 7})
    blacklist = patterns.TokenBlacklist(primary.client(), keys, durability=durable)
    assert blacklist.revoke("jti-1", int(time.time()) + 60)
    stream = patterns.EventStream(primary.client(), keys, "orders", "billing", durability=durable)
    entry = stream.publish({"order": 1})
    on_replica = replica.client()
    # No waiting here: WAIT returned only once the replica had applied them.
    assert on_replica.get(f"d:session:{session}") == '{"user": 7}'
    assert on_replica.exists("d:jwt-revoked:jti-1")
    assert on_replica.xrange("d:stream:orders")[0][0] == entry
    assert sessions.delete(session) and not on_replica.exists(f"d:session:{session}")


def test_a_durable_write_no_replica_confirms_fails_and_a_plain_one_does_not(
    start_server: Callable[..., Server],
) -> None:
    primary, replica = _replicated_pair(start_server)
    keys = patterns.KeySpace("d:")
    durable = patterns.SessionStore(primary.client(), keys, durability=patterns.Durability(1, 300))
    plain = patterns.SessionStore(primary.client(), keys, durability=patterns.Durability(0))
    # The pair works: a write confirmed, given time.
    patterns.SessionStore(primary.client(), keys, durability=patterns.Durability(1, 5000)).create({"warm": 1})
    # The replica, still linked, stalls for 1.5 s: it cannot confirm in 300 ms.
    stall = replica.client()
    stalled = threading.Thread(target=lambda: stall.execute_command("DEBUG", "SLEEP", "1.5"))
    stalled.start()
    try:
        time.sleep(0.1)
        started = time.monotonic()
        with pytest.raises(patterns.NotDurable, match=r"^0 of 1 replica\(s\) confirmed the write within 300 ms$"):
            durable.create({"user": 8})
        assert 0.3 <= time.monotonic() - started < 1.0
        started = time.monotonic()
        plain.create({"user": 9})
        assert time.monotonic() - started < 0.2
    finally:
        stalled.join()


def test_durability_comes_from_the_deployments_environment() -> None:
    assert patterns.Durability.from_env({}) == patterns.Durability(0, 1000)
    found = patterns.Durability.from_env({"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_MS": "250"})
    assert found == patterns.Durability(1, 250)


def test_connect_follows_a_url_directly_and_through_sentinel_with_a_user(start_server: Callable[..., Server]) -> None:
    app = "user default off\nuser app on >app-secret ~* &* +@all\n"
    primary = start_server(app)
    sentinel = start_server(
        app
        + f"sentinel monitor cache 127.0.0.1 {primary.port} 1\n"
        + "sentinel auth-user cache app\nsentinel auth-pass cache app-secret\n",
        sentinel=True,
    )
    direct = patterns.connect(f"redis://app:app-secret@127.0.0.1:{primary.port}/2", decode_responses=True)
    assert direct.set("k", "direct") and direct.get("k") == "direct"
    url = f"sentinel://app:app-secret@127.0.0.1:{sentinel.port}/3;sentinel://app:app-secret@127.0.0.1:{sentinel.port}"
    followed = patterns.connect(url, master_name="cache", decode_responses=True)
    assert followed.set("k", "through sentinel") and followed.get("k") == "through sentinel"
    on_primary = primary.client(username="app", password="app-secret", db=3)
    assert on_primary.get("k") == "through sentinel", "the URL's /3 chose the database"
    with pytest.raises(ValueError, match="needs master_name"):
        patterns.connect(url)
    # A refused password is not a missing primary to redis-py 8, and is to 5.0: both a ConnectionError.
    with pytest.raises(redis.ConnectionError):
        patterns.connect(url.replace("app-secret", "wrong"), master_name="cache").ping()
