"""The post-deploy smoke suite against the deployed stacks and against broken servers."""

from __future__ import annotations

import os
import time
import xml.etree.ElementTree as ET

import pytest
import redis

from bizosaas_redis_ops import results
from bizosaas_redis_ops.check import scenarios, smoke
from conftest import STACKS, admin_client, cli, free_port, open_conf, outputs

SCENARIOS = len(scenarios.SCENARIOS)
# A split stack runs health and role checks on both instances, the rest where services keep it.
DURABLE = len(scenarios.DURABLE_SCENARIOS)
SPLIT_ROWS = {"cache": 2 + SCENARIOS - 2 - DURABLE, "durable": 2 + DURABLE}


@pytest.mark.parametrize("stack", STACKS)
def test_smoke_passes_on_each_deployed_stack(deployed, stack, tmp_path):
    report = tmp_path / "smoke.xml"
    result = cli("smoke", "--stack", stack, "--junit", str(report), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    expected = SCENARIOS if stack != "production" else sum(SPLIT_ROWS.values())
    assert lines[-1] == f"{expected} passed, 0 failed"
    rows = lines[3:-1]
    assert len(rows) == expected and all("  PASS  " in row for row in rows)
    if stack == "production":  # split: each scenario ran on the instance serving it
        for use, count in SPLIT_ROWS.items():
            assert sum(f"[{use}]" in row for row in rows) == count, result.stdout
        assert any(row.startswith("celery task round trip [durable]") for row in rows)
        assert any(row.startswith("api response cache [cache]") for row in rows)
    suite = ET.parse(report).getroot()
    assert suite.get("tests") == str(expected) and suite.get("failures") == "0"
    for password in _passwords(stack):
        assert password not in result.stdout + result.stderr + report.read_text()


def _passwords(stack: str) -> list[str]:
    values = outputs(stack)
    keys = [k for k in values if k.endswith(("redis_url", "redis_admin_url"))]
    return [values[k].rsplit("@", 1)[0].rsplit(":", 1)[1] for k in keys if "@" in values[k]]


def _snapshot(stack: str) -> dict[tuple[int, bytes], tuple[bytes, int]]:
    """Every key of dbs 0-2: (db, key) -> (DUMP, PTTL), through the admin user."""
    snap = {}
    for db in (0, 1, 2):
        admin = admin_client(stack, db=db, decode=False)
        keys = list(admin.scan_iter(count=1000))
        pipe = admin.pipeline(transaction=False)
        for key in keys:
            pipe.dump(key).pttl(key)
        replies = pipe.execute()
        for i, key in enumerate(keys):
            snap[(db, key)] = (replies[2 * i], replies[2 * i + 1])
    return snap


def _fill_unrelated(stack: str, per_type: int = 400) -> int:
    """A few thousand keys of every type, some with TTLs, in the stack's databases."""
    written = 0
    for db in (0, 1, 2):
        client = admin_client(stack, db=db)
        pipe = client.pipeline(transaction=False)
        for i in range(per_type):
            base = f"unrelated:{db}:{i}"
            pipe.set(f"{base}:str", f"value-{i}")
            pipe.hset(f"{base}:hash", mapping={"a": i, "b": "x"})
            pipe.rpush(f"{base}:list", *range(3))
            pipe.sadd(f"{base}:set", "a", "b", i)
            pipe.zadd(f"{base}:zset", {"a": i, "b": -i})
            if i % 50 == 0:
                pipe.xadd(f"{base}:stream", {"n": i})
                pipe.pfadd(f"{base}:hll", "a", "b")
                pipe.setbit(f"{base}:bits", i, 1)
            if i % 3 == 0:
                pipe.expire(f"{base}:str", 3600 + i)
                pipe.expire(f"{base}:hash", 7200)
        written += sum(1 for ok in pipe.execute() if ok is not None)
    return written


def test_smoke_leaves_every_other_key_exactly_as_it_was(deployed):
    stack = "staging"
    _fill_unrelated(stack)
    started = time.monotonic()
    before = _snapshot(stack)
    assert len(before) > 6000
    result = cli("smoke", "--stack", stack, check=False)
    assert result.returncode == 0, result.stdout
    after = _snapshot(stack)
    elapsed_ms = (time.monotonic() - started) * 1000  # the most any TTL can have run down
    assert set(after) == set(before), "keys were added or removed"
    for key, (dumped, pttl) in before.items():
        assert after[key][0] == dumped, f"value of {key} changed"
        if pttl < 0:
            assert after[key][1] == pttl, f"TTL of {key} changed"
        else:
            assert pttl - elapsed_ms - 1000 <= after[key][1] <= pttl, f"TTL of {key} changed"
    for db in (0, 1, 2):
        client = admin_client(stack, db=db)
        names = list(client.scan_iter(match="unrelated:*", count=1000))
        for start in range(0, len(names), 1000):
            client.delete(*names[start : start + 1000])


def _target_for(port: int, password: str | None = None, user: str = "default", scheme: str = "redis") -> str:
    auth = f"{user}:{password}@" if password else ""
    return f"{scheme}://{auth}127.0.0.1:{port}/0"


def test_wrong_password_is_one_clear_line(deployed):
    port = deployed["staging"].port
    result = cli("smoke", "--url", _target_for(port, "not-the-password"), check=False)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("bizosaas-redis smoke: authentication failed at 127.0.0.1:")
    assert "Traceback" not in result.stderr and "not-the-password" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unreachable_port_is_one_clear_line():
    result = cli("smoke", "--url", _target_for(free_port()), check=False)
    assert result.returncode == 2
    assert "connection refused; is the container running" in result.stderr
    assert "Traceback" not in result.stderr


def test_url_from_environment(deployed):
    env = {**os.environ, "REDIS_URL": outputs("dev")["redis_url"]}
    result = cli("smoke", "--only", "health check", "--only", "sessions", env=env, check=False)
    assert result.returncode == 0 and result.stdout.splitlines()[-1] == "2 passed, 0 failed"


def _keys_with_prefix(stack: str, prefix: str) -> list:
    return [k for db in (0, 1, 2) for k in admin_client(stack, db=db).scan_iter(match=f"{prefix}*")]


def test_a_failing_scenario_still_cleans_up(deployed):
    def writes_then_fails(run: smoke.Run) -> None:
        run.client().set(run.keys().key("half-done"), "x")
        run.client(run.target.broker_db).rpush(run.keys(run.target.broker_db).key("queue"), "job")
        raise AssertionError("deliberate failure")

    target = smoke.Target.from_outputs(outputs("production"))
    run, results = smoke.run_suite(
        target,
        scenarios=[
            ("health check", scenarios.scenario_health),
            ("fails", writes_then_fails),
            ("sessions", scenarios.scenario_sessions),
        ],
    )
    assert [(r.scenario, r.passed) for r in results] == [("health check", True), ("fails", False), ("sessions", True)]
    assert results[1].reason == "deliberate failure"
    assert len(run.keyspaces[0].written) >= 3
    assert _keys_with_prefix("production", run.prefix) == []


def test_an_interrupted_run_cleans_up(deployed):
    def interrupted(run: smoke.Run) -> None:
        run.client().set(run.keys().key("before-ctrl-c"), "x")
        raise KeyboardInterrupt

    target = smoke.Target.from_outputs(outputs("production"))
    run = smoke.Run(target, run_id="interrupted-test")
    with pytest.raises(KeyboardInterrupt):
        smoke.run_suite(target, scenarios=[("interrupted", interrupted)], run_id=run.run_id)
    assert _keys_with_prefix("production", "smoke:interrupted-test:") == []


def test_read_only_replica_is_one_clear_line(start_redis):
    conf = open_conf()
    primary = start_redis(conf)
    replica = start_redis(conf + f"replicaof 127.0.0.1 {primary.port}\n")
    result = cli("smoke", "--url", _target_for(replica.port), check=False)
    assert result.returncode == 2
    where = f"127.0.0.1:{replica.port}"
    expected = f"bizosaas-redis smoke: {where} is a read-only replica: point the URL at the primary"
    assert result.stderr.strip() == expected


def test_out_of_memory_is_one_clear_line(start_redis):
    server = start_redis(open_conf(maxmemory=2 * 1024**2, maxmemory_policy="noeviction"))
    client = server.client()
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        for i in range(10_000):
            client.set(f"filler:{i}", "x" * 1000)
    result = cli("smoke", "--url", _target_for(server.port), check=False)
    assert result.returncode == 2
    assert "is out of memory" in result.stderr and "Traceback" not in result.stderr


def test_tls_mismatch_is_one_clear_line(start_redis, tmp_path):
    from test_redis_conf_server import _make_certs

    certs = tmp_path / "certs"
    certs.mkdir()
    _make_certs(certs)
    conf = open_conf()
    conf += f"tls-cert-file {certs}/tls.crt\ntls-key-file {certs}/tls.key\ntls-ca-cert-file {certs}/ca.crt\n"
    conf += "tls-auth-clients no\n"
    server = start_redis(conf, tls=True)
    result = cli("smoke", "--url", _target_for(server.port), check=False)
    assert result.returncode == 2
    assert "TLS" in result.stderr and "Traceback" not in result.stderr
    # And with TLS on both sides the suite reaches the server.
    result = cli(
        "smoke",
        "--url",
        _target_for(server.port, scheme="rediss"),
        "--tls-ca",
        str(certs / "ca.crt"),
        "--only",
        "health check",
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_benchmark_prints_a_table(deployed, monkeypatch):
    # One run on the test stack: never a measurement to keep, even under BIZOSAAS_RESULTS_DIR.
    monkeypatch.delenv(results.RESULTS_ENV, raising=False)
    result = cli("benchmark", "smoke", "--stack", "dev", "--runs", "1")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["benchmark", "unit", "min", "median", "max", "runs"]
    names = [line.split("  ")[0].strip() for line in lines[2:]]
    assert "smoke: whole suite" in names and "redis-benchmark GET (P16)" in names
    assert len(names) == SCENARIOS + 1 + 4
