"""Topology sentinel under the mock runtime: settings, placement, rendered files, the
program's resources and what consumers get. The failover itself is proven for real in
tests/integration/test_sentinel_hosts.py."""

from __future__ import annotations

import json
import subprocess

import pytest

import capture
from bizosaas_redis import redis_conf, sentinel_conf, startup, topology
from bizosaas_redis.constants import CONTAINER, DOCKER_PROVIDER
from bizosaas_redis.settings import SettingsError, build_settings

HOSTS = {
    "a": {"url": "ssh://deploy@10.0.0.11", "address": "10.0.0.11"},
    "b": {"url": "ssh://deploy@10.0.0.12", "address": "10.0.0.12"},
    "c": {"url": "unix:///var/run/docker.sock", "address": "10.0.0.13"},
}
BASE = {"topology": "sentinel", "dockerHosts": HOSTS}
PASSWORDS = {"password": "app-pw-7", "adminPassword": "admin-pw-7"}


def _settings(**more):  # type: ignore[no-untyped-def]
    return build_settings({**BASE, **more}, "staging")


def _problems(**values) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(SettingsError) as caught:
        build_settings(values, "staging")
    return str(caught.value)


def test_defaults_and_placement_spread_over_the_hosts():
    s = _settings()
    assert (s.replicas, s.sentinels, s.sentinel_quorum, s.min_replicas_to_write) == (2, 3, 2, 0)
    nodes, sentinels = topology.nodes(s), topology.sentinels(s)
    assert [n.endpoint for n in nodes] == ["10.0.0.11:6380", "10.0.0.12:6381", "10.0.0.13:6382"]
    assert [n.container_name for n in nodes] == [s.name, f"{s.name}-1", f"{s.name}-2"]
    assert [n.volume_name for n in nodes] == ["redis_data", "redis_data_1", "redis_data_2"]
    assert [x.endpoint for x in sentinels] == ["10.0.0.11:26380", "10.0.0.12:26381", "10.0.0.13:26382"]


def test_production_refuses_writes_a_failover_would_drop():
    s = build_settings({**BASE, "environment": "production"}, "production")
    assert s.min_replicas_to_write == 1
    assert _settings(environment="staging").min_replicas_to_write == 0


def test_durable_writes_wait_for_one_replica_with_sentinel_and_none_without():
    assert (_settings().durable_write_replicas, _settings().durable_write_timeout_ms) == (1, 1000)
    assert build_settings({}, "staging").durable_write_replicas == 0
    assert "redis:durableWriteReplicas = 3: must not exceed replicas (2)" in _problems(**BASE, durableWriteReplicas=3)
    assert "redis:durableWriteReplicas = 1: must be 0 with topology standalone" in _problems(durableWriteReplicas=1)
    env = capture.run_program("staging", values=BASE, secrets_config=PASSWORDS).outputs["consumer_env"].value
    assert (env["REDIS_WAIT_REPLICAS"], env["REDIS_WAIT_TIMEOUT_MS"]) == ("1", "1000")


def test_one_host_by_default_at_the_advertised_address():
    s = build_settings({"topology": "sentinel", "advertisedHost": "172.17.0.1"}, "staging")
    assert {n.host.address for n in [*topology.nodes(s), *topology.sentinels(s)]} == {"172.17.0.1"}
    assert "dockerHosts = {}: must be set" in _problems(topology="sentinel", advertisedHost="redis.example")


def test_each_bad_topology_setting_is_one_line():
    text = _problems(
        **BASE,
        sentinels=4,
        sentinelQuorum=5,
        minReplicasToWrite=3,
        placement=["a", "z"],
        sentinelPort=6381,
        exporterEnabled=True,
        exporterPort=6379,
    )
    for line in (
        "redis:sentinels = 4: must be odd",
        "redis:sentinelQuorum = 5: must not exceed sentinels (4)",
        "redis:minReplicasToWrite = 3: must not exceed replicas (2)",
        'redis:placement = ["a", "z"]: must name 3 hosts',
        "names unknown host(s) z",
        "redis:sentinelPort = 6381: overlaps the nodes' ports 6380-6382",
        "redis:exporterPort = 6379: must leave room for one port per node and Sentinel (7), apart from the nodes' and "
        "Sentinels' ports",
    ):
        assert line in text
    assert "redis:dockerHosts.a.address" in _problems(
        topology="sentinel", dockerHosts={"a": {"address": "0.0.0.0"}}
    ) or ("wildcard" in _problems(topology="sentinel", dockerHosts={"a": {"address": "0.0.0.0"}}))


def test_a_split_stack_refuses_port_ranges_that_meet():
    """The durable instance's ports are the cache's + 10; with 5 replicas and 7 Sentinels the
    exporters take 13 ports from exporterPort, past that offset: one line, before deploying."""
    big = {"topology": "sentinel", "replicas": 5, "sentinels": 7, "exporterEnabled": True}
    text = _problems(**{**BASE, **big, "layout": "split", "durable": big})
    assert (
        "redis:durable.exporterPort = 9131: its ports 9131-9143 meet the cache instance's (9131, 9132, 9133); "
        "move it past them"
    ) in text
    assert "hostPort" not in text and "sentinelPort" not in text
    build_settings({**BASE, **big, "layout": "split", "durable": {**big, "exporterPort": 9200}}, "staging")


def test_node_config_replicates_from_node_0_and_announces_its_host():
    s = _settings(minReplicasToWrite=1)
    first, second = topology.nodes(s)[:2]
    assert "replicaof" not in sentinel_conf.render_node_config(s, first)
    text = sentinel_conf.render_node_config(s, second)
    for line in (
        "bind 10.0.0.12 127.0.0.1",
        "port 6381",
        "replicaof 10.0.0.11 6380",
        "replica-announce-ip 10.0.0.12",
        "replica-announce-port 6381",
        "masteruser replication",
    ):
        assert line in text.splitlines()
    # Set while Redis runs: in the node's online.conf, not in redis.conf.
    assert "min-replicas-to-write" not in text
    online = redis_conf.render_online(s, second).splitlines()
    assert "min-replicas-to-write 1" in online and "min-replicas-max-lag 10" in online
    assert "masterauth" not in text  # the exported part holds no secret
    whole = sentinel_conf.render_node(s, second, "repl-pw")
    assert "masterauth repl-pw" in whole and "\nuser " not in whole
    accepted = sentinel_conf.Accepted("repl-pw"), sentinel_conf.Accepted("sent-pw")
    users = sentinel_conf.render_node_users(s, ("app-pw", "admin-pw", None, *accepted))
    assert "app-pw" not in users and "repl-pw" not in users  # hashes only
    assert {line.split()[1] for line in users.splitlines()} == {
        "default",
        "admin",
        "healthcheck",
        "replication",
        "sentinel",
    }
    assert redis_conf.expected_config(s, second)["port"] == "6381"


def test_sentinel_config_keeps_its_id_and_hashes_client_passwords():
    s = _settings()
    one = topology.sentinels(s)[0]
    text = sentinel_conf.render_sentinel_config(s, one)
    assert f"sentinel monitor {s.name} 10.0.0.11 6380 2" in text
    assert f"sentinel myid {topology.sentinel_id(s, one)}" in text
    assert "sentinel announce-ip 10.0.0.11" in text and "port 26380" in text
    users = sentinel_conf.render_sentinel_users(s, "app-pw", "admin-pw", sentinel_conf.Accepted("sent-pw"))
    assert "app-pw" not in users and "admin-pw" not in users and "sent-pw" not in users
    assert all(line.startswith("user ") for line in users.splitlines())
    assert f"sentinel auth-pass {s.name} sent-pw" in sentinel_conf.render_sentinel_secrets(s, "sent-pw")
    assert f"aclfile {redis_conf.USERS_PATH}" in text
    assert topology.sentinel_id(s, one) == topology.sentinel_id(_settings(), one)  # stable


@pytest.mark.parametrize("discovery", [None, startup.Discovery("m", [("10.0.0.1", 26380)], ("10.0.0.2", 6381))])
def test_start_scripts_parse_as_posix_shell(discovery, tmp_path):
    script = tmp_path / "start.sh"
    script.write_text(startup.render("redis", discovery))
    subprocess.run(["sh", "-n", str(script)], check=True)
    sentinel = tmp_path / "sentinel.sh"
    sentinel.write_text(startup.render_sentinel("redis", startup.Discovery("m", [("10.0.0.1", 26380)]), 2))
    subprocess.run(["sh", "-n", str(sentinel)], check=True)


def test_a_node_asks_sentinel_and_follows_the_primary_it_reports():
    text = startup.render("redis", startup.Discovery("m", [("10.0.0.1", 26380)], ("10.0.0.2", 6381)))
    assert "--user healthcheck --pass healthcheck" in text  # the public PING-only user
    assert 'if [ "$primary" = "10.0.0.2 6381" ]; then' in text
    assert text.rstrip().endswith("exec redis-server /data/redis.conf $role")


def test_the_program_places_each_container_on_its_hosts_engine():
    cap = capture.run_program(
        "staging", values={**BASE, "containerName": "x", "volumeName": "x"}, secrets_config=PASSWORDS
    )
    providers = {r.name: r.plain["host"] for r in cap.of_type(DOCKER_PROVIDER)}
    assert providers == {
        "redis-docker-a": HOSTS["a"]["url"],
        "redis-docker-b": HOSTS["b"]["url"],
        "redis-docker-c": HOSTS["c"]["url"],
    }
    everything = {r.plain["name"]: r for r in cap.of_type(CONTAINER)}
    containers = {name: r for name, r in everything.items() if r.plain.get("start") is not False}
    assert set(containers) == {"x", "x-1", "x-2", "x-sentinel-1", "x-sentinel-2", "x-sentinel-3"}
    # Each container's files, and its online.conf's.
    assert set(everything) - set(containers) == {f"{name}-files" for name in containers} | {
        f"{name}-online" for name in containers
    }
    for name, host in (("x", "a"), ("x-1", "b"), ("x-2", "c"), ("x-sentinel-2", "b")):
        assert f"::redis-docker-{host}::" in containers[name].options["provider"]
        # Its files land on its volume, on its host.
        assert f"::redis-docker-{host}::" in everything[f"{name}-files"].options["provider"]
        assert containers[name].plain["networkMode"] == "host"
        assert "ports" not in containers[name].plain
    # Replicas before node 0 (it depends on them), Sentinels after every node.
    order = [r.plain["name"] for r in containers.values()]
    assert order.index("x-2") < order.index("x-1") < order.index("x") < order.index("x-sentinel-1")
    # Sentinels one after the other: replaced at once, none could learn the primary from a peer.
    for later, earlier in (("x-sentinel-2", "x-sentinel-1"), ("x-sentinel-3", "x-sentinel-2")):
        needs = containers[later].options["dependencies"]
        assert any(urn.endswith(f"::{containers[earlier].name}") for urn in needs), (later, needs)
    for r in containers.values():  # the files containers' uploads are secrets
        text = json.dumps(r.plain)
        assert "app-pw-7" not in text and "admin-pw-7" not in text


def test_sentinel_timing_is_applied_to_the_running_sentinels():
    s = _settings(downAfterMilliseconds=7000, failoverTimeout=20000)
    one = topology.sentinels(s)[0]
    main = sentinel_conf.render_sentinel_config(s, one).splitlines()
    assert not [line for line in main if "down-after" in line or "failover-timeout" in line]
    # Included after the monitor line the options refer to.
    assert main.index(f"include {redis_conf.ONLINE_CONFIG_PATH}") > next(
        i for i, line in enumerate(main) if line.startswith("sentinel monitor ")
    )
    online = sentinel_conf.render_sentinel_online(s).splitlines()
    assert f"sentinel down-after-milliseconds {s.name} 7000" in online
    assert f"sentinel failover-timeout {s.name} 20000" in online
    assert sentinel_conf.sentinel_online_config(s) == {"down-after-milliseconds": "7000", "failover-timeout": "20000"}


def _sentinel_resources(**values: object) -> tuple[dict[str, capture.Resource], list[capture.Resource]]:
    # Every password given: generated ones would differ between the two runs compared.
    secrets = {**PASSWORDS, "sentinelPassword": "sent-pw-7", "replicationPassword": "repl-pw-7"}
    cap = capture.run_program(
        "staging", values={**BASE, "containerName": "x", "volumeName": "x", **values}, secrets_config=secrets
    )
    containers = {r.plain["name"]: r for r in cap.of_type(CONTAINER) if "sentinel" in r.plain["name"]}
    applied = [r for r in cap.of_type(capture.ONLINE_SETTINGS) if r.plain["master"]]
    return containers, applied


def test_a_sentinel_timing_change_replaces_no_sentinel_and_is_set_on_each():
    before, _ = _sentinel_resources()
    after, applied = _sentinel_resources(downAfterMilliseconds=7000, failoverTimeout=20000)
    s = _settings(containerName="x", volumeName="x")
    assert [r.plain["endpoints"] for r in applied] == [[x.endpoint] for x in topology.sentinels(s)]
    for r in applied:
        assert r.plain["master"] == topology.master_name(s)
        assert r.plain["directives"] == {"down-after-milliseconds": "7000", "failover-timeout": "20000"}
        assert r.plain["username"] == s.admin_username and capture.is_secret(r.inputs["password"])
    for name in ("x-sentinel-1", "x-sentinel-2", "x-sentinel-3"):
        # The Sentinel, its files and its labels are the same: nothing replaces it ...
        for same in (name, f"{name}-files"):
            assert json.dumps(after[same].plain, sort_keys=True) == json.dumps(before[same].plain, sort_keys=True)
        # ... but its online.conf, which it depends on and is not replaced with.
        assert after[f"{name}-online"].plain != before[f"{name}-online"].plain
        online = after[f"{name}-online"].name
        assert any(urn.endswith(f"::{online}") for urn in after[name].options["dependencies"])
        assert not any(urn.endswith(f"::{online}") for urn in after[name].options.get("replaceWith", []))


SENTINEL_WRITES = {"set", "remove", "monitor", "failover", "reset", "config", "flushconfig", "simulate-failure"}


def test_each_node_and_sentinel_has_its_exporter_on_its_host():
    values = {**BASE, "containerName": "x", "volumeName": "x", "exporterEnabled": True}
    passwords: dict[str, str] = {}
    cap = capture.run_program("staging", values=values, secrets_config=PASSWORDS, passwords=passwords)
    exporters = {r.plain["name"]: r for r in cap.of_type(CONTAINER) if r.plain["name"].endswith("-exporter")}
    assert set(exporters) == {"x-exporter", "x-1-exporter", "x-2-exporter"} | {
        f"x-sentinel-{j}-exporter" for j in (1, 2, 3)
    }
    for name, host, port, listen in (
        ("x", "a", 6380, 9121),
        ("x-1", "b", 6381, 9122),
        ("x-2", "c", 6382, 9123),
        # Each Sentinel's after the nodes': exporterPort + replicas + j.
        ("x-sentinel-1", "a", 26380, 9124),
        ("x-sentinel-2", "b", 26381, 9125),
        ("x-sentinel-3", "c", 26382, 9126),
    ):
        exporter = exporters[f"{name}-exporter"]
        assert f"::redis-docker-{host}::" in exporter.options["provider"]
        assert exporter.plain["networkMode"] == "host" and "ports" not in exporter.plain
        envs = exporter.plain["envs"]
        assert f"REDIS_ADDR=redis://127.0.0.1:{port}" in envs
        assert f"REDIS_EXPORTER_WEB_LISTEN_ADDRESS={HOSTS[host]['address']}:{listen}" in envs
        written = cap.files_of(exporter).plain["uploads"][0]["content"]
        assert json.loads(written) == {f"redis://127.0.0.1:{port}": passwords["redis-exporter-password"]}
    urls = [f"http://10.0.0.1{i}:912{i}/metrics" for i in (1, 2, 3)]
    assert cap.outputs["exporter_urls"].value == urls and cap.outputs["exporter_url"].value == urls[0]
    sentinel_urls = [f"http://10.0.0.1{i}:912{i + 3}/metrics" for i in (1, 2, 3)]
    assert cap.outputs["sentinel_exporter_urls"].value == sentinel_urls
    # Every node's users have the exporter's ACL user (a failover moves the primary role).
    for node in ("x", "x-1", "x-2"):
        assert "user exporter reset on #" in cap.users_of(
            next(r for r in cap.of_type(CONTAINER) if r.plain["name"] == node)
        )
    from bizosaas_redis_ops.check import alerts

    nodes_job, sentinels_job = alerts.scrape_configs(build_settings(values, "staging"))
    for job, name, listed in ((nodes_job, "bizosaas-redis-staging", urls), (sentinels_job, "-sentinel", sentinel_urls)):
        assert job["job_name"].endswith(name)
        assert job["static_configs"] == [
            {"targets": [u.removeprefix("http://").removesuffix("/metrics") for u in listed]}
        ]


def test_a_sentinel_exporter_may_only_read_the_sentinel():
    """The exporter's user on a Sentinel: INFO and SENTINEL's read-only subcommands (CKQUORUM
    among them), none that reconfigures (SET, REMOVE, MONITOR, FAILOVER, RESET, CONFIG)."""
    s = _settings(exporterEnabled=True)
    users = sentinel_conf.render_sentinel_users(
        s, "app-pw-7", "admin-pw-7", sentinel_conf.Accepted("sentinel-pw-7"), "exporter-pw-7"
    )
    [line] = [u for u in users.splitlines() if u.startswith("user exporter ")]
    assert "exporter-pw-7" not in users and line.split()[4].startswith("#")
    rules = line.split()[5:]
    assert rules[0] == "-@all" and "+sentinel|ckquorum" in rules and "+info" in rules
    assert not [r for r in rules if r.startswith("+sentinel|") and r.split("|")[1] in SENTINEL_WRITES]
    assert "user exporter" not in sentinel_conf.render_sentinel_users(s, "a", "b", sentinel_conf.Accepted("c"))


def test_consumers_get_sentinel_urls_and_transport_options():
    cap = capture.run_program("staging", values=BASE, secrets_config=PASSWORDS)
    env = cap.outputs["consumer_env"].value
    assert env["REDIS_TOPOLOGY"] == "sentinel"
    assert env["REDIS_SENTINELS"] == "10.0.0.11:26380,10.0.0.12:26381,10.0.0.13:26382"
    assert env["REDIS_MASTER_NAME"] == "bizosaas-redis-staging"
    assert env["CELERY_BROKER_URL"] == ";".join(f"sentinel://10.0.0.1{i}:2638{i - 1}/1" for i in (1, 2, 3))
    assert json.loads(env["CELERY_BROKER_TRANSPORT_OPTIONS"])["master_name"] == "bizosaas-redis-staging"
    assert "app-pw-7" not in json.dumps(env)
    secret = cap.outputs["consumer_secrets"]
    assert secret.secret
    assert json.loads(secret.value["CELERY_BROKER_TRANSPORT_OPTIONS"])["sentinel_kwargs"]["password"] == "app-pw-7"
    assert secret.value["REDIS_URL"].startswith("sentinel://default:app-pw-7@10.0.0.11:26380/0;")
    assert cap.outputs["sentinels"].value == env["REDIS_SENTINELS"].split(",")


def test_standalone_is_unchanged_by_the_topology_code():
    cap = capture.run_program("staging", values={}, secrets_config=PASSWORDS)
    assert not cap.of_type(DOCKER_PROVIDER)
    container = cap.container()
    assert len(cap.of_type(CONTAINER)) == 3  # with its files container and its online.conf's
    assert container.plain["command"] == startup.COMMAND
    assert "networkMode" not in container.plain
    assert "REDIS_SENTINELS" not in cap.outputs["consumer_env"].value


def test_every_output_is_documented_and_every_documented_one_is_exported():
    """The outputs reference (bizosaas_redis.stack_outputs) against what the program exports:
    each stack file, a sentinel stack with exporters, and a stack with the unix socket."""
    from bizosaas_redis import stack_outputs
    from bizosaas_redis.settings import DURABLE_PREFIX, available_stacks, read_stack_config, stack_file

    staging = read_stack_config(stack_file("staging"))
    runs = [capture.run_program(stack) for stack in available_stacks()]
    runs.append(capture.run_program("staging", values={**staging, **BASE}, secrets_config=PASSWORDS))
    runs.append(capture.run_program("staging", values={**staging, "unixSocket": True}))
    exported = {name: output for run in runs for name, output in run.outputs.items()}
    assert all(stack_outputs.documented(name) for name in exported), sorted(exported)
    plain = {name.removeprefix(f"{DURABLE_PREFIX}_") for name in exported}
    assert plain == {*stack_outputs.STACK, *stack_outputs.INSTANCE}, "a documented output no stack exports"
    for name, output in exported.items():
        documented_secret = name.removeprefix(f"{DURABLE_PREFIX}_") in stack_outputs.SECRET
        assert output.secret == documented_secret, f"{name}: exported secret={output.secret}, documented otherwise"
