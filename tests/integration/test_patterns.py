"""Consumer patterns against a real redis-server, beyond what the smoke suite shows."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest
import redis

import bizosaas_redis_patterns as patterns
from bizosaas_redis_ops import smoke
from conftest import ROOT

CONF = "user default on nopass ~* &* +@all\n"


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
