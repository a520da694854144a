"""bizosaas-redis monitor against real servers; the Prometheus rules through promtool."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from bizosaas_redis.settings import (
    Settings,
    available_stacks,
    build_settings,
    instances,
    load_stack_file,
    read_stack_config,
    stack_file,
)
from bizosaas_redis_ops.check import alerts, dashboard
from conftest import ROOT, TEST_EXTERNAL_NETWORK, cli, open_conf, own_settings, unavailable


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
    server = start_redis(open_conf(maxmemory=4 * 1024**2))
    client = server.client()
    pipe = client.pipeline(transaction=False)
    for i in range(6000):
        pipe.set(f"k{i}", "x" * 1000)
    pipe.execute()
    stop = threading.Event()

    def misses() -> None:  # during the sampled window: hit rate well below 50 %
        reader = server.client()
        for i in range(20_000):
            if stop.is_set():
                return
            reader.get(f"missing{i}")
            time.sleep(0.001)

    thread = threading.Thread(target=misses, daemon=True)
    thread.start()
    try:
        result = cli(
            "monitor", "--url", f"redis://127.0.0.1:{server.port}/0", "--json", "--interval", "1.5", check=False
        )
    finally:
        stop.set()
        thread.join(timeout=10)
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


def test_committed_dashboards_are_current_and_draw_the_alert_thresholds():
    for stack in available_stacks():
        path = ROOT / "monitoring" / f"{stack}.dashboard.json"
        settings = load_stack_file(stack)
        assert path.read_text() == dashboard.render(settings), f"run bizosaas-redis dashboard --all ({path})"
        panels = {panel["title"]: panel for panel in json.loads(path.read_text())["panels"]}
        memory = panels["Memory used, % of maxmemory"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert [step["value"] for step in memory] == [
            None,
            settings.alert_memory_percent,
            settings.alert_memory_critical_percent,
        ]


def test_every_rule_links_its_runbook_and_each_dashboard_the_page():
    """kube-prometheus's convention: a `runbook_url` annotation per rule, here a section of
    docs/runbooks.md (rendered from the same rules by bizosaas-redis docs)."""
    import re

    page = (ROOT / "docs" / "runbooks.md").read_text()
    sections = {heading.lower() for heading in re.findall(r"^## (\w+)$", page, re.MULTILINE)}
    replicated = load_stack_file("production").model_copy(update={"topology": "sentinel"})
    for settings in [*(load_stack_file(stack) for stack in available_stacks()), replicated]:
        for rule in alerts.rules(settings):
            base, _, anchor = rule["annotations"]["runbook_url"].partition("#")
            assert base == settings.runbook_url == "docs/runbooks.md" and anchor == rule["alert"].lower()
            assert anchor in sections, f"{rule['alert']} has no section in docs/runbooks.md"
        links = dashboard.dashboard(settings)["links"]
        assert [link["url"] for link in links] == [settings.runbook_url]
    elsewhere = load_stack_file("staging").model_copy(update={"runbook_url": "https://docs.example/runbooks"})
    assert alerts.rules(elsewhere)[0]["annotations"]["runbook_url"] == "https://docs.example/runbooks#redisdown"


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
    count = sum(len(alerts.rules(instance)) for instance in instances(load_stack_file(stack)))
    assert f"SUCCESS: {count} rules found" in result.stdout


def _alert(name: str, stack: str, severity: str, instance: str = "redis:9121") -> dict:
    return {
        "exp_labels": {
            "severity": severity,
            "stack": stack,
            "service": "bizosaas-redis",
            "role": "shared",
            "job": f"bizosaas-redis-{stack}",
            "instance": instance,
        }
    }


GIB2 = 2 * 1024**3  # staging's maxmemory
# What an operator reads, written out (not rebuilt with the generator's own f-string).
SUMMARIES = {
    "RedisDown": ("critical", "Redis is down"),
    "RedisMemoryHigh": ("warning", "Redis uses more than 80 % of maxmemory"),
    "RedisMemoryCritical": ("critical", "Redis uses more than 95 % of maxmemory"),
    "RedisClientsHigh": ("warning", "More than 90 % of maxclients are connected"),
    "RedisClientsCritical": ("critical", "More than 98 % of maxclients are connected"),
    "RedisRejectedConnections": ("warning", "Redis rejected connections (maxclients reached)"),
    "RedisHitRateLow": ("warning", "Keyspace hit rate below 80 %"),
    "RedisHitRateCritical": ("critical", "Keyspace hit rate below 50 %"),
    "RedisEvictionsHigh": ("warning", "More than 1000 evictions per second"),
    "RedisEvictionsCritical": ("critical", "More than 10000 evictions per second"),
    "RedisPersistenceFailed": ("critical", "Redis failed to persist (RDB save or AOF write)"),
    "RedisLastSaveTooOld": ("warning", "No successful RDB save for more than 3600 s"),
}


def _memory(used_percent: float) -> dict[str, str]:
    return {"redis_memory_used_bytes": f"{int(GIB2 * used_percent / 100)}x40", "redis_memory_max_bytes": f"{GIB2}x40"}


def _clients(connected: int) -> dict[str, str]:
    return {"redis_connected_clients": f"{connected}x40", "redis_config_maxclients": "1000x40"}


def _lookups(hits_per_minute: int, misses_per_minute: int) -> dict[str, str]:
    return {
        "redis_keyspace_hits_total": f"0+{hits_per_minute}x40",
        "redis_keyspace_misses_total": f"0+{misses_per_minute}x40",
    }


# alert -> (eval time, series that make it fire, series that must not); staging's thresholds.
CASES = {
    "RedisDown": ("5m", {"redis_up": "0x10"}, {"redis_up": "1x10"}),
    "RedisMemoryHigh": ("10m", _memory(85), _memory(70)),
    "RedisMemoryCritical": ("10m", _memory(97), _memory(85)),
    "RedisClientsHigh": ("10m", _clients(950), _clients(500)),
    "RedisClientsCritical": ("10m", _clients(990), _clients(950)),
    "RedisRejectedConnections": (
        "5m",
        {"redis_rejected_connections_total": "0 0 0 5 5 5 5"},
        {"redis_rejected_connections_total": "0x10"},
    ),
    "RedisHitRateLow": ("30m", _lookups(70, 30), _lookups(90, 10)),
    # 10 % hits but only 10 lookups a minute: too few to judge, as in `monitor`.
    "RedisHitRateCritical": ("30m", _lookups(40, 60), _lookups(1, 9)),
    "RedisEvictionsHigh": (
        "10m",
        {"redis_evicted_keys_total": "0+90000x20"},
        {"redis_evicted_keys_total": "0+30000x20"},
    ),
    "RedisEvictionsCritical": (
        "10m",
        {"redis_evicted_keys_total": "0+900000x20"},
        {"redis_evicted_keys_total": "0+90000x20"},
    ),
    "RedisPersistenceFailed": (
        "8m",
        {"redis_rdb_last_bgsave_status": "1x3 0x6", "redis_aof_last_write_status": "1x10"},
        {"redis_rdb_last_bgsave_status": "1x10", "redis_aof_last_write_status": "1x10"},
    ),
    # Saved at time 0; 80 minutes later: with changes waiting, it fires; on an idle server, not.
    "RedisLastSaveTooOld": (
        "80m",
        {"redis_rdb_last_save_timestamp_seconds": "0x90", "redis_rdb_changes_since_last_save": "5x90"},
        {"redis_rdb_last_save_timestamp_seconds": "0x90", "redis_rdb_changes_since_last_save": "0x90"},
    ),
}


GIB1 = 1024**3  # production's durable maxmemory
FULL = "The durable Redis uses more than 80 % of maxmemory; when full it refuses writes (queues, sessions, streams)"
# Production's durable instance: full is critical at once (it refuses writes), not a warning.
DURABLE_SUMMARIES = {
    "RedisDurableMemoryHigh": ("critical", FULL),
    "RedisDurableWritesRefused": ("critical", "The durable Redis refused writes: maxmemory reached (OOM)"),
}
DURABLE_CASES = {
    "RedisDurableMemoryHigh": (
        "10m",
        {"redis_memory_used_bytes": f"{int(GIB1 * 0.85)}x40", "redis_memory_max_bytes": f"{GIB1}x40"},
        {"redis_memory_used_bytes": f"{int(GIB1 * 0.7)}x40", "redis_memory_max_bytes": f"{GIB1}x40"},
    ),
    'RedisDurableWritesRefused{err="OOM"}': (
        "5m",
        # As the exporter shows it: no series until the first refusal.
        {"redis_errors_total": "_ _ _ 3 3 3 3"},
        {"redis_errors_total": "0x10"},
    ),
}


def test_every_rule_has_a_case():
    assert sorted(CASES) == sorted(r["alert"] for r in alerts.rules(load_stack_file("staging"))) == sorted(SUMMARIES)
    durable = instances(load_stack_file("production"))[1]
    assert {r["alert"] for r in alerts.rules(durable)} - set(CASES) == set(DURABLE_SUMMARIES)
    assert {name.split("{")[0] for name in DURABLE_CASES} == set(DURABLE_SUMMARIES)


PROMTOOL_CASES = [("staging", "shared", name) for name in sorted(CASES)] + [
    ("production", "durable", name) for name in sorted(DURABLE_CASES)
]


@pytest.mark.parametrize(("stack", "role", "case_name"), PROMTOOL_CASES)
def test_each_rule_fires_on_its_threshold_and_not_below(promtool, tmp_path, stack, role, case_name):
    """promtool unit tests on the committed rules: fires with the series, silent without."""
    alertname, _, extra = case_name.partition("{")
    eval_time, firing, quiet = (DURABLE_CASES if role == "durable" else CASES)[case_name]
    job = f"bizosaas-redis-{stack}" + ("-durable" if role == "durable" else "")
    labels = f'job="{job}",instance="redis:9121"' + ("," + extra.rstrip("}") if extra else "")
    severity, summary = (DURABLE_SUMMARIES if role == "durable" else SUMMARIES)[alertname]
    extra_labels = dict(pair.replace('"', "").split("=") for pair in extra.rstrip("}").split(",")) if extra else {}
    expected = {
        "exp_labels": {
            "severity": severity,
            "stack": stack,
            "service": "bizosaas-redis",
            "role": role,
            "job": job,
            "instance": "redis:9121",
            **extra_labels,
        },
        "exp_annotations": {
            "summary": summary,
            "description": f"{summary} (stack {stack}, redis:9121)",
            "action": alerts.ACTIONS[alertname],
            "runbook_url": f"docs/runbooks.md#{alertname.lower()}",
        },
    }

    def labelled(series: dict[str, str]) -> dict[str, str]:
        return {f"{name}{{{labels}}}": values for name, values in series.items()}

    rules = ROOT / "monitoring" / f"{stack}.rules.yml"
    _fires_and_stays_quiet(promtool, tmp_path, rules, alertname, eval_time, expected, labelled(firing), labelled(quiet))


def _fires_and_stays_quiet(
    promtool: str,
    tmp_path,
    rules: Path,
    alertname: str,
    eval_time: str,
    expected: dict,
    firing: dict[str, str],
    quiet: dict[str, str],
) -> None:
    """promtool's verdict on `rules`: `alertname` fires as `expected` with the `firing`
    series (full names, labels included), and not at all with the `quiet` ones."""

    def case(series: dict[str, str], alerts_expected: list[dict]) -> dict:
        return {
            "interval": "1m",
            "input_series": [{"series": name, "values": values} for name, values in series.items()],
            "alert_rule_test": [{"eval_time": eval_time, "alertname": alertname, "exp_alerts": alerts_expected}],
        }

    tests = {
        "rule_files": [str(rules)],
        "evaluation_interval": "1m",
        "tests": [case(firing, [expected]), case(quiet, [])],
    }
    path = tmp_path / "alerts.test.yml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = subprocess.run([promtool, "test", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


# Topology sentinel: staging's settings on three nodes, each with its exporter (one job,
# a target per node); minReplicasToWrite 1, minReplicasMaxLag 10.
SENTINEL_VALUES = {"topology": "sentinel", "minReplicasToWrite": 1}
NODES = ("node0:9121", "node1:9122", "node2:9123")


def _info(roles: dict[str, str]) -> dict[str, str]:
    """redis_instance_info per node: `roles` maps a node to its values (`1x20`, `_x10 1x10`)."""
    return {f'redis_instance_info{{instance="{node}",role="{role}"}}': v for node, (role, v) in roles.items()}


def _primary_with(followers: str) -> dict[str, str]:
    return {**_info({NODES[0]: ("master", "1x20")}), f'redis_connected_slaves{{instance="{NODES[0]}"}}': followers}


# alert -> (summary, severity, the alert's own labels, eval time, firing series, quiet series)
REPLICATION_CASES = {
    "RedisNoPrimary": (
        "No node of the instance is the primary",
        "critical",
        {},
        "5m",
        _info({NODES[0]: ("slave", "1x20"), NODES[1]: ("slave", "1x20")}),
        _info({NODES[0]: ("master", "1x20"), NODES[1]: ("slave", "1x20")}),
    ),
    "RedisReplicaLinkDown": (
        "A replica's link to its primary is down",
        "critical",
        {"instance": NODES[1]},
        "5m",
        {f'redis_master_link_up{{instance="{NODES[1]}"}}': "1 1 0x10"},
        {f'redis_master_link_up{{instance="{NODES[1]}"}}': "1x20"},
    ),
    "RedisReplicasBelowMinimum": (
        "Fewer than 1 replica(s) follow the primary (writes are refused)",
        "critical",
        {},
        "5m",
        _primary_with("2 2 0x10"),
        _primary_with("1x20"),
    ),
    "RedisReplicasMissing": (
        "Fewer than 2 replicas follow the primary",
        "warning",
        {},
        "10m",
        _primary_with("1x20"),
        _primary_with("2x20"),
    ),
    "RedisReplicationLagHigh": (
        "A replica lags more than 5 s (minReplicasMaxLag 10)",
        "warning",
        {},
        "5m",
        {f'redis_connected_slave_lag_seconds{{instance="{NODES[0]}",slave_port="6381"}}': "0 0 8x10"},
        {f'redis_connected_slave_lag_seconds{{instance="{NODES[0]}",slave_port="6381"}}': "1x20"},
    ),
    # Node 1 a replica for 10 minutes, then the primary: a failover; a steady primary is none.
    "RedisFailoverHappened": (
        "A replica was promoted to primary in the last 10 minutes",
        "warning",
        {"instance": NODES[1]},
        "13m",
        {
            f'redis_instance_info{{instance="{NODES[1]}",role="slave"}}': "1x10",
            f'redis_instance_info{{instance="{NODES[1]}",role="master"}}': "_x11 1x10",
        },
        _info({NODES[0]: ("master", "1x20"), NODES[1]: ("slave", "1x20")}),
    ),
}


# The Sentinels' job: a target per Sentinel. CKQUORUM's message is a label of the status:
# a Sentinel that loses its quorum starts a new series (0) and ends the old one (1).
SENTINELS = ("s1:9124", "s2:9125", "s3:9126")


def _quorum(ok: dict[str, str], lost: dict[str, str]) -> dict[str, str]:
    """redis_sentinel_master_ckquorum_status per Sentinel: `ok` its OK series, `lost` its NOQUORUM one."""
    name = 'redis_sentinel_master_ckquorum_status{{instance="{}",master_name="redis",message="{}"}}'
    return {
        **{name.format(s, "OK 3 usable Sentinels"): v for s, v in ok.items()},
        **{name.format(s, "NOQUORUM 1 usable Sentinels"): v for s, v in lost.items()},
    }


SENTINEL_CASES = {
    # The Sentinel stopped, its exporter still answering (what the three-host test does).
    "RedisSentinelDown": (
        "A Sentinel does not answer",
        "warning",
        {"instance": SENTINELS[1]},
        "10m",
        {f'redis_up{{instance="{SENTINELS[1]}"}}': "1 1 0x10", f'up{{instance="{SENTINELS[1]}"}}': "1x12"},
        {f'redis_up{{instance="{SENTINELS[1]}"}}': "1x12", f'up{{instance="{SENTINELS[1]}"}}': "1x12"},
    ),
    # Two of three Sentinels gone, the third's CKQUORUM fails; one cut off alone is no loss.
    "RedisSentinelQuorumLost": (
        "No Sentinel reaches a majority of the Sentinels: the primary cannot fail over",
        "critical",
        {},
        "5m",
        # Series that end are marked stale, as a scrape that no longer has them does.
        _quorum({s: "1 1 stale" for s in SENTINELS}, {SENTINELS[0]: "_ _ 0x10"}),
        _quorum({SENTINELS[0]: "1 1 stale", SENTINELS[1]: "1x12", SENTINELS[2]: "1x12"}, {SENTINELS[0]: "_ _ 0x10"}),
    ),
}


def _sentinel_staging() -> Settings:
    return build_settings({**read_stack_config(stack_file("staging", ROOT)), **SENTINEL_VALUES}, "staging")


def test_every_replication_rule_has_a_case():
    settings = _sentinel_staging()
    names = {r["alert"] for r in alerts.rules(settings)} - {
        r["alert"] for r in alerts.rules(load_stack_file("staging"))
    }
    assert names == set(REPLICATION_CASES) | set(SENTINEL_CASES)


@pytest.mark.parametrize("alertname", sorted(REPLICATION_CASES) + sorted(SENTINEL_CASES))
def test_each_replication_rule_fires_on_its_bound_and_not_within_it(promtool, tmp_path, alertname):
    """promtool unit tests on a sentinel stack's generated rules, with a series per node
    (per Sentinel for the Sentinels' job)."""
    settings = _sentinel_staging()
    rules_file = tmp_path / "sentinel.rules.yml"
    rules_file.write_text(alerts.render(settings))
    summary, severity, own_labels, eval_time, firing, quiet = {**REPLICATION_CASES, **SENTINEL_CASES}[alertname]
    job = "bizosaas-redis-staging" + ("-sentinel" if alertname in SENTINEL_CASES else "")
    where = own_labels.get("instance", "")
    expected = {
        "exp_labels": {"severity": severity, "stack": "staging", "service": "bizosaas-redis", "role": "shared"}
        | {"job": job, **own_labels},
        "exp_annotations": {
            "summary": summary,
            "description": f"{summary} (stack staging, {where})",
            "action": alerts.ACTIONS[alertname],
            "runbook_url": f"docs/runbooks.md#{alertname.lower()}",
        },
    }

    def with_job(series: dict[str, str]) -> dict[str, str]:
        return {name.replace("{", f'{{job="{job}",', 1): values for name, values in series.items()}

    _fires_and_stays_quiet(
        promtool, tmp_path, rules_file, alertname, eval_time, expected, with_job(firing), with_job(quiet)
    )


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


def test_doctor_checks_the_host(deployed, engine):
    # The real staging stack's network: checked as it is on this engine (a Dokploy host has it).
    present = bool(engine.networks.list(names=["dokploy-network"]))
    result = cli("doctor", "--stack", "staging", check=False, env=dict(os.environ))  # the checkout's stack file
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
    assert "  OK  " in rows["docker engine"] + "  " and "  OK  " in rows["pulumi CLI"] + "  "
    if present:
        assert "  OK  " in rows["network dokploy-network"] + "  " and result.returncode == 0
    else:
        network = rows["network dokploy-network"]
        assert "  FAIL  " in network + "  "
        assert "missing; Dokploy creates it, or: docker network create dokploy-network" in network
        assert result.returncode == 1
        assert result.stderr.strip() == "bizosaas-redis doctor: a prerequisite is missing (FAIL above)"
    # The test deployment's own "Dokploy" network exists.
    from bizosaas_redis_ops.deploy import doctor

    checks = {c.name: c for c in doctor.doctor(own_settings("staging"))}
    assert checks[f"network {TEST_EXTERNAL_NETWORK}"].status == "OK"


def test_doctor_fails_on_a_missing_external_network(deployed):
    from bizosaas_redis.settings import build_settings
    from bizosaas_redis_ops.deploy import doctor

    checks = {c.name: c for c in doctor.doctor(build_settings({"networkName": "no-such-network-x"}, "x"))}
    missing = checks["network no-such-network-x"]
    assert missing.status == "FAIL" and "docker network create no-such-network-x" in missing.detail
