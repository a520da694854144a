"""bizosaas-redis monitor against real servers; the Prometheus rules through promtool."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from bizosaas_redis import redis_conf
from bizosaas_redis.settings import available_stacks, load_stack_file
from bizosaas_redis_ops import alerts
from conftest import ROOT, cli, unavailable


def test_monitor_is_ok_on_a_fresh_deployment(deployed):
    result = cli("monitor", "--stack", "staging", "--interval", "0.2", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "overall: OK"
    for metric in (
        "memory used",
        "clients",
        "keyspace hit rate",
        "evictions per second",
        "rejected connections",
        "last RDB save",
        "AOF",
        "replication role",
        "uptime",
    ):
        assert metric in result.stdout


def test_monitor_reports_a_full_cache_with_misses_as_critical(start_redis):
    conf = redis_conf.render_config(load_stack_file("dev")).replace("maxmemory 256mb", "maxmemory 4mb")
    server = start_redis(conf + "user default on nopass ~* &* +@all\n")
    client = server.client()
    pipe = client.pipeline(transaction=False)
    for i in range(6000):
        pipe.set(f"k{i}", "x" * 1000)
    pipe.execute()
    for i in range(300):
        client.get(f"missing{i}")  # hit rate well below 50 %
    result = cli(
        "monitor", "--url", f"redis://127.0.0.1:{server.port}/0", "--json", "--interval", "0.2", check=False
    )
    assert result.returncode == 2, result.stdout + result.stderr
    report = json.loads(result.stdout)
    statuses = {m["name"]: m["status"] for m in report["metrics"]}
    assert report["status"] == "CRIT"
    assert statuses["memory used"] in ("WARN", "CRIT") and statuses["keyspace hit rate"] == "CRIT"


def test_monitor_unreachable_is_one_line():
    from conftest import free_port

    result = cli("monitor", "--url", f"redis://127.0.0.1:{free_port()}/0", check=False)
    assert result.returncode == 2 and "connection refused" in result.stderr and "Traceback" not in result.stderr


def test_committed_rule_files_are_current():
    for stack in available_stacks():
        path = ROOT / "monitoring" / f"{stack}.rules.yml"
        fresh = alerts.render(load_stack_file(stack))
        assert path.read_text() == fresh, f"run bizosaas-redis alert-rules --all ({path})"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        unavailable("promtool is not installed (apt-get install prometheus)")
    return found


@pytest.mark.parametrize("stack", available_stacks())
def test_rules_pass_promtool_check(promtool, stack):
    result = subprocess.run(
        [promtool, "check", "rules", str(ROOT / "monitoring" / f"{stack}.rules.yml")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alerts.rules(load_stack_file(stack)))} rules found" in result.stdout


def _alert(name: str, stack: str, severity: str, instance: str = "redis:9121") -> dict:
    return {
        "exp_labels": {
            "severity": severity,
            "stack": stack,
            "service": "bizosaas-redis",
            "job": f"bizosaas-redis-{stack}",
            "instance": instance,
        }
    }


def test_rules_fire_on_the_thresholds(promtool, tmp_path):
    """promtool unit tests: series crossing each threshold fire exactly the expected alerts."""
    stack = "staging"
    settings = load_stack_file(stack)
    job = f'job="bizosaas-redis-{stack}",instance="redis:9121"'
    maxmem = settings.maxmemory
    tests = {
        "rule_files": [str(ROOT / "monitoring" / f"{stack}.rules.yml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f"redis_up{{{job}}}", "values": "1 1 0 0 0"},
                    {"series": f"redis_memory_max_bytes{{{job}}}", "values": f"{maxmem}x20"},
                    # 85 % for 10 minutes, then 97 %
                    {
                        "series": f"redis_memory_used_bytes{{{job}}}",
                        "values": f"{int(maxmem * 0.85)}x10 {int(maxmem * 0.97)}x10",
                    },
                    {"series": f"redis_connected_clients{{{job}}}", "values": "950x20"},
                    {"series": f"redis_config_maxclients{{{job}}}", "values": "1000x20"},
                    {"series": f"redis_evicted_keys_total{{{job}}}", "values": "0+90000x20"},  # 1500/s
                    {"series": f"redis_rdb_last_bgsave_status{{{job}}}", "values": "1x5 0x5"},
                    {"series": f"redis_aof_last_write_status{{{job}}}", "values": "1x20"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "4m",
                        "alertname": "RedisDown",
                        "exp_alerts": [_alert("RedisDown", stack, "critical")],
                    },
                    {
                        "eval_time": "9m",
                        "alertname": "RedisMemoryHigh",
                        "exp_alerts": [_alert("RedisMemoryHigh", stack, "warning")],
                    },
                    {"eval_time": "9m", "alertname": "RedisMemoryCritical", "exp_alerts": []},
                    {
                        "eval_time": "15m",
                        "alertname": "RedisMemoryCritical",
                        "exp_alerts": [_alert("RedisMemoryCritical", stack, "critical")],
                    },
                    {"eval_time": "15m", "alertname": "RedisMemoryHigh", "exp_alerts": []},
                    {
                        "eval_time": "9m",
                        "alertname": "RedisClientsHigh",
                        "exp_alerts": [_alert("RedisClientsHigh", stack, "warning")],
                    },
                    {
                        "eval_time": "9m",
                        "alertname": "RedisEvictionsHigh",
                        "exp_alerts": [_alert("RedisEvictionsHigh", stack, "warning")],
                    },
                    {"eval_time": "9m", "alertname": "RedisEvictionsCritical", "exp_alerts": []},
                    {
                        "eval_time": "8m",
                        "alertname": "RedisPersistenceFailed",
                        "exp_alerts": [_alert("RedisPersistenceFailed", stack, "critical")],
                    },
                    {"eval_time": "3m", "alertname": "RedisPersistenceFailed", "exp_alerts": []},
                ],
            }
        ],
    }
    # What an operator reads, written out (not rebuilt with the generator's own f-string).
    summaries = {
        "RedisDown": "Redis is down",
        "RedisMemoryHigh": "Redis uses more than 80 % of maxmemory",
        "RedisMemoryCritical": "Redis uses more than 95 % of maxmemory",
        "RedisClientsHigh": "More than 90 % of maxclients are connected",
        "RedisEvictionsHigh": "More than 1000 evictions per second",
        "RedisPersistenceFailed": "Redis failed to persist (RDB save or AOF write)",
    }
    for case in tests["tests"][0]["alert_rule_test"]:
        for alert in case["exp_alerts"]:
            summary = summaries[case["alertname"]]
            alert["exp_annotations"] = {
                "summary": summary,
                "description": f"{summary} (stack staging, redis:9121)",
            }
    path = tmp_path / "alerts.test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_test_can_fail(promtool, tmp_path):
    """The harness above is able to fail: a wrong expectation is reported."""
    stack = "staging"
    job = f'job="bizosaas-redis-{stack}",instance="redis:9121"'
    tests = {
        "rule_files": [str(ROOT / "monitoring" / f"{stack}.rules.yml")],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": f"redis_up{{{job}}}", "values": "1x10"}],
                "alert_rule_test": [
                    {
                        "eval_time": "5m",
                        "alertname": "RedisDown",
                        "exp_alerts": [_alert("RedisDown", stack, "critical")],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "wrong.test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True)
    # promtool's own verdict on the alert, not just a non-zero exit (a bad file exits non-zero too).
    assert result.returncode == 1
    assert "FAILED:" in result.stdout + result.stderr
    assert "alertname: RedisDown" in result.stdout + result.stderr


def test_doctor_checks_the_host(deployed):
    result = cli("doctor", "--stack", "staging", check=False)
    rows = {line.split("  ")[0].strip(): line for line in result.stdout.splitlines()[2:]}
    for name in (
        "docker engine",
        "vm.overcommit_memory",
        "transparent huge pages",
        "free disk for the data volume",
        "network dokploy-network",
        "pulumi CLI",
    ):
        assert name in rows, result.stdout
    assert "  OK  " in rows["docker engine"] + "  " and "  OK  " in rows["network dokploy-network"] + "  "
    assert result.returncode == 0


def test_doctor_fails_on_a_missing_external_network(deployed):
    from bizosaas_redis.settings import build_settings
    from bizosaas_redis_ops import doctor

    checks = {c.name: c for c in doctor.doctor(build_settings({"networkName": "no-such-network-x"}, "x"))}
    missing = checks["network no-such-network-x"]
    assert missing.status == "FAIL" and "docker network create no-such-network-x" in missing.detail
