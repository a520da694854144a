"""Consumer patterns against a real redis-server, beyond what the smoke suite shows."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

import pytest
import redis

import bizosaas_redis_patterns as patterns
from bizosaas_redis_ops.check import smoke
from conftest import ROOT

CONF = "user default on nopass ~* &* +@all\nrepl-diskless-sync-delay 0\n"


@pytest.fixture
def client(start_redis) -> redis.Redis:
    return start_redis(CONF).client()


def _in_new_process(code: str, seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT / "scripts")}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout


def test_cache_keys_are_stable_across_processes_unlike_builtin_hash():
    code = (
        "import bizosaas_redis_patterns as patterns; print(patterns.stable_hash('tenant', 7, {'b': 1, 'a': 2}));"
        "print(hash('tenant'))"
    )
    first, second = _in_new_process(code, "1").split(), _in_new_process(code, "2").split()
    assert first[0] == second[0] == patterns.stable_hash("tenant", 7, {"a": 2, "b": 1})
    assert first[1] != second[1], "built-in hash() of a str differs between processes"


def test_cached_none_is_a_hit(client):
    keys, calls = patterns.KeySpace("t:"), []

    @patterns.cached(client, keys, "api", ttl=60)
    def lookup(x: int) -> None:
        calls.append(x)

    assert lookup(1) is None and lookup(1) is None
    assert calls == [1] and lookup.stats.hits == 1


def test_revoked_token_is_forgotten_at_exp(client):
    blacklist = patterns.TokenBlacklist(client, patterns.KeySpace("t:"))
    exp = int(time.time()) + 2
    assert blacklist.revoke("jti-1", exp) and blacklist.is_revoked("jti-1")
    time.sleep(max(0.0, exp - time.time()) + 0.2)
    assert not blacklist.is_revoked("jti-1")


def test_rate_limiter_window_resets(client):
    limiter = patterns.RateLimiter(client, patterns.KeySpace("t:"), limit=3, window_ms=300)
    assert [limiter.allow("u") for _ in range(5)] == [True, True, True, False, False]
    time.sleep(0.4)
    assert limiter.allow("u")


def test_keyspace_tracks_only_when_asked():
    plain, tracked = patterns.KeySpace("svc:"), patterns.KeySpace("smoke:1:", track=True)
    assert plain.key("a", "b") == "svc:a:b" and plain.written == set()
    tracked.key("x")
    assert tracked.written == {"smoke:1:x"}


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (redis.AuthenticationError("invalid username-password pair"), "authentication failed at h:1"),
        (redis.ReadOnlyError("READONLY You can't write against a read only replica."), "is a read-only replica"),
        (redis.OutOfMemoryError("OOM command not allowed"), "is out of memory"),
        (redis.ConnectionError("Error 111 connecting to h:1. Connection refused."), "connection refused"),
        (redis.ConnectionError("Connection closed by server."), "TLS mismatch?"),
        (redis.TimeoutError("Timeout connecting to server"), "timed out"),
    ],
)
def test_errors_are_explained_in_one_line(exc, expected):
    line = smoke.explain(exc, smoke.Target(url="redis://u:secret@h:1/0"))
    assert expected in line and "\n" not in line and "secret" not in line


def test_report_formats():
    results = [smoke.Result("a", True, 0.01), smoke.Result("b", False, 0.02, "boom")]
    text = smoke.table(results)
    assert text.splitlines()[-1] == "1 passed, 1 failed" and "FAIL" in text and "boom" in text
    suite = ET.fromstring(smoke.junit_xml(results))
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    assert suite.find("testcase[@name='b']/failure").get("message") == "boom"


def _replicated_pair(start_redis):  # type: ignore[no-untyped-def]
    """A primary and a replica of it (DEBUG on, to make the replica stall), linked."""
    primary = start_redis(CONF)
    replica = start_redis(CONF + f"enable-debug-command yes\nreplicaof 127.0.0.1 {primary.port}\n")
    deadline = time.monotonic() + 10
    while replica.client().info("replication").get("master_link_status") != "up":
        assert time.monotonic() < deadline, "the replica did not link to the primary"
        time.sleep(0.05)
    return primary, replica


def test_durable_writes_are_on_a_replica_when_they_return(start_redis):
    primary, replica = _replicated_pair(start_redis)
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


def test_a_durable_write_no_replica_confirms_fails_and_a_plain_one_does_not(start_redis):
    primary, replica = _replicated_pair(start_redis)
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


def test_durability_comes_from_the_deployments_environment():
    assert patterns.Durability.from_env({}) == patterns.Durability(0, 1000)
    found = patterns.Durability.from_env({"REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT_MS": "250"})
    assert found == patterns.Durability(1, 250)
