"""The change matrix: every setting key changed alone, and what the program then does to
the running servers and Sentinels, under Pulumi's mocks.

Each key of the settings model gets a new value (CHANGES; a key added to the model
without one fails `test_every_setting_key_has_a_case`). The program runs with the staging
stack file (with the sentinel topology, or TLS on, for the keys that only act there),
before and after the change; what differs is sorted into effects:
- `replaced`: a server's (or a Sentinel's) container or its files change in a way the
  Docker provider replaces (everything but IN_PLACE): a restart, a handover on the
  sentinel topology;
- `in place`: only what the provider updates in place (the memory limit);
- `online`: what RedisOnlineSettings sets on the running server (or Sentinel): its
  directives or options, or its ACL users;
- `added`, `removed`: a container the change creates or deletes (a node, a Sentinel).

Asserted: a key the settings model marks online (the configuration reference's column
"Applied without restart") never replaces a container and changes what is set online;
every other key never changes the online settings alone. The matrix is also
results/change-matrix.json (written here when BIZOSAAS_RESULTS_DIR is set), which
`bizosaas-redis docs` renders beside the pauses measured per path; a matrix that differs
from the committed file fails, so the documented table is the program's. What the real engine does with
them is proven by tests/integration/test_online_settings.py and test_data_safety.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_topology import HOSTS, PASSWORDS

import capture
from bizosaas_redis.constants import CONTAINER, LABEL_SERVICE, SERVICE_REDIS, SERVICE_SENTINEL
from bizosaas_redis.settings import (
    NAMESPACE,
    Settings,
    online_acl_settings,
    online_directives,
    online_sentinel_options,
    read_stack_config,
    stack_file,
)
from bizosaas_redis_ops import results
from bizosaas_redis_pulumi.components.files import NAME_SUFFIX
from conftest import ROOT

STAGING = read_stack_config(stack_file("staging"))
TLS_DIR = "/etc/redis-tls"
# The stack file each key is changed on: staging's, or with what the key acts on.
BASES = {
    "staging": STAGING,
    "sentinel": {**STAGING, "topology": "sentinel", "dockerHosts": HOSTS},
    "tls": {**STAGING, "tlsEnabled": True, "tlsCertsDir": TLS_DIR},
}
# What the Docker provider updates in place (docker update: the restart policy, memory);
# every other change of a container's inputs replaces it.
IN_PLACE = {"memory", "memorySwap", "restart"}
# Derived, not settable.
DERIVED = {"stack", "role"}

# Field -> (stack config values changed, the base they change).
CHANGES: dict[str, tuple[dict[str, Any], str]] = {
    "environment": ({"environment": "production", "publishAddress": "127.0.0.1"}, "staging"),
    "container_name": ({"containerName": "bizosaas-redis-renamed"}, "staging"),
    "flavour": ({"flavour": "valkey", "image": "valkey/valkey:8.1.4-alpine"}, "staging"),
    "image": ({"image": "redis:7.4.6-alpine"}, "staging"),
    "layout": ({"layout": "split"}, "staging"),
    "durable": ({"layout": "split", "durable": {"maxmemory": "512mb"}}, "staging"),
    "topology": ({"topology": "sentinel", "dockerHosts": HOSTS}, "staging"),
    "replicas": ({"replicas": 1, "sentinelQuorum": 2}, "sentinel"),
    "sentinels": ({"sentinels": 5, "sentinelQuorum": 3}, "sentinel"),
    "sentinel_quorum": ({"sentinelQuorum": 3}, "sentinel"),
    "sentinel_port": ({"sentinelPort": 26400}, "sentinel"),
    "down_after_milliseconds": ({"downAfterMilliseconds": 7000}, "sentinel"),
    "failover_timeout": ({"failoverTimeout": 20000}, "sentinel"),
    "min_replicas_to_write": ({"minReplicasToWrite": 2}, "sentinel"),
    "min_replicas_max_lag": ({"minReplicasMaxLag": 5}, "sentinel"),
    "durable_write_replicas": ({"durableWriteReplicas": 2}, "sentinel"),
    "durable_write_timeout_ms": ({"durableWriteTimeoutMs": 500}, "sentinel"),
    "docker_hosts": (
        {"dockerHosts": {**HOSTS, "c": {"url": "ssh://deploy@10.0.0.14", "address": "10.0.0.14"}}},
        "sentinel",
    ),
    "placement": ({"placement": ["b", "c", "a"]}, "sentinel"),
    "sentinel_placement": ({"sentinelPlacement": ["b", "c", "a"]}, "sentinel"),
    "host_port": ({"hostPort": 6390}, "staging"),
    "publish_address": ({"publishAddress": "127.0.0.1"}, "staging"),
    "advertised_host": ({"advertisedHost": "redis.internal"}, "staging"),
    "network_name": ({"networkName": "another-network"}, "staging"),
    "network_external": ({"networkExternal": False}, "staging"),
    "network_aliases": ({"networkAliases": ["redis-staging", "cache"]}, "staging"),
    "unix_socket": ({"unixSocket": True}, "staging"),
    "volume_name": ({"volumeName": "another_redis_data"}, "staging"),
    "retain_data_on_destroy": ({"retainDataOnDestroy": False}, "staging"),
    "maxmemory": ({"maxmemory": "1gb"}, "staging"),
    "maxmemory_policy": ({"maxmemoryPolicy": "allkeys-lfu"}, "staging"),
    "maxmemory_samples": ({"maxmemorySamples": 7}, "staging"),
    "memory_limit": ({"memoryLimit": "6gb"}, "staging"),
    "maxclients": ({"maxclients": 900}, "staging"),
    "timeout": ({"timeout": 30}, "staging"),
    "tcp_keepalive": ({"tcpKeepalive": 60}, "staging"),
    "databases": ({"databases": 17}, "staging"),
    "cache_db": ({"cacheDb": 3}, "staging"),
    "celery_broker_db": ({"celeryBrokerDb": 4}, "staging"),
    "celery_result_db": ({"celeryResultDb": 5}, "staging"),
    "cache_ttl": ({"cacheTtl": 600}, "staging"),
    "session_ttl": ({"sessionTtl": 3600}, "staging"),
    "stream_maxlen": ({"streamMaxlen": 5000}, "staging"),
    "save": ({"save": ["60 1"]}, "staging"),
    "appendonly": ({"appendonly": False}, "staging"),
    "appendfsync": ({"appendfsync": "always"}, "staging"),
    "save_on_shutdown": ({"appendonly": False, "saveOnShutdown": False}, "staging"),
    "auth_enabled": ({"authEnabled": False}, "staging"),
    "app_username": ({"appUsername": "bizosaas"}, "staging"),
    "admin_username": ({"adminUsername": "operator"}, "staging"),
    "denied_commands": ({"deniedCommands": ["FLUSHALL", "FLUSHDB", "KEYS"]}, "staging"),
    "tls_enabled": ({"tlsEnabled": True, "tlsCertsDir": TLS_DIR}, "staging"),
    "tls_certs_dir": ({"tlsCertsDir": "/etc/other-tls"}, "tls"),
    "tls_auth_clients": ({"tlsAuthClients": "no"}, "tls"),
    "restart_policy": ({"restartPolicy": "always"}, "staging"),
    "stop_grace_period": ({"stopGracePeriod": 60}, "staging"),
    "healthcheck_interval": ({"healthcheckInterval": 20}, "staging"),
    "healthcheck_timeout": ({"healthcheckTimeout": 3}, "staging"),
    "healthcheck_retries": ({"healthcheckRetries": 3}, "staging"),
    "healthcheck_start_period": ({"healthcheckStartPeriod": 30}, "staging"),
    "log_max_size": ({"logMaxSize": "20m"}, "staging"),
    "log_max_files": ({"logMaxFiles": 5}, "staging"),
    "loglevel": ({"loglevel": "warning"}, "staging"),
    "labels": ({"labels": {"team": "platform"}}, "staging"),
    "alert_memory_percent": ({"alertMemoryPercent": 70}, "staging"),
    "alert_memory_critical_percent": ({"alertMemoryCriticalPercent": 90}, "staging"),
    "alert_clients_percent": ({"alertClientsPercent": 80}, "staging"),
    "alert_clients_critical_percent": ({"alertClientsCriticalPercent": 95}, "staging"),
    "alert_hit_rate_percent": ({"alertHitRatePercent": 70}, "staging"),
    "alert_hit_rate_critical_percent": ({"alertHitRateCriticalPercent": 40}, "staging"),
    "alert_evictions_per_second": ({"alertEvictionsPerSecond": 500}, "staging"),
    "alert_evictions_critical_per_second": ({"alertEvictionsCriticalPerSecond": 5000}, "staging"),
    "alert_last_save_age": ({"alertLastSaveAge": 7200}, "staging"),
    "runbook_url": ({"runbookUrl": "https://runbooks.example/redis"}, "staging"),
    "exporter_enabled": ({"exporterEnabled": False}, "staging"),
    "exporter_image": ({"exporterImage": "oliver006/redis_exporter:v1.63.0"}, "staging"),
    "exporter_port": ({"exporterPort": 9122}, "staging"),
}


# Generated passwords by resource name, shared by every run: the same before and after.
GENERATED: dict[str, str] = {}


def _declared(values: dict[str, Any]) -> capture.Capture:
    return capture.run_program("staging", values=values, passwords=GENERATED, secrets_config=PASSWORDS)


def _service(resource: capture.Resource) -> str:
    return capture.label_dict(resource.plain.get("labels")).get(LABEL_SERVICE, "")


def _who(resource: capture.Resource) -> str | None:
    """`server` or `sentinel` for a running container of either, else None."""
    if resource.type != CONTAINER or resource.plain.get("start") is False:
        return None
    return {SERVICE_REDIS: "server", SERVICE_SENTINEL: "sentinel"}.get(_service(resource))


def _effects(before: capture.Capture, after: capture.Capture) -> set[str]:
    """What the change does to the servers and Sentinels, as `<who> <effect>`."""
    old = {r.name: r for r in before.resources}
    new = {r.name for r in after.resources}
    effects = {f"{_who(r)} removed" for r in before.resources if _who(r) and r.name not in new}
    for resource in after.resources:
        was = old.get(resource.name)
        if resource.type == capture.ONLINE_SETTINGS:
            who = "sentinel" if resource.plain["master"] else "server"
            if was is not None and any(was.plain.get(k) != resource.plain.get(k) for k in ("directives", "users")):
                effects.add(f"{who} online")
        who = _who(resource)
        if who is None:
            continue
        if was is None:
            effects.add(f"{who} added")
            continue
        files = after.files_of(resource, NAME_SUFFIX)
        if old.get(files.name) is None or old[files.name].plain != files.plain:
            effects.add(f"{who} replaced")
            continue
        changed = {k for k in {*resource.plain, *was.plain} if resource.plain.get(k) != was.plain.get(k)}
        if changed - IN_PLACE:
            effects.add(f"{who} replaced")
        elif changed:
            effects.add(f"{who} in place")
    return effects


@pytest.fixture(scope="module")
def matrix() -> dict[str, set[str]]:
    declared = {name: _declared(values) for name, values in BASES.items()}
    return {
        field: _effects(declared[base], _declared({**BASES[base], **change}))
        for field, (change, base) in CHANGES.items()
    }


def test_every_setting_key_has_a_case():
    assert set(CHANGES) == set(Settings.model_fields) - DERIVED


def test_a_setting_marked_online_never_replaces_a_container(matrix):
    online = set(online_directives())
    for field in online:
        assert "server online" in matrix[field] and "server replaced" not in matrix[field], (field, matrix[field])
        assert matrix[field] <= {"server online", "server in place"}, (field, matrix[field])
    for field in online_sentinel_options():
        assert matrix[field] == {"sentinel online"}, (field, matrix[field])
    for field in online_acl_settings():  # on staging's base: no Sentinel
        assert matrix[field] == {"server online"}, (field, matrix[field])


def test_every_other_setting_never_changes_the_online_settings_alone(matrix):
    """A key not marked online that changes what is set online (TLS adds its files) also
    replaces the server: a restart-class key is never applied online only."""
    for field, effects in matrix.items():
        if field in {*online_directives(), *online_sentinel_options(), *online_acl_settings()}:
            continue
        if "server online" in effects:
            assert "server replaced" in effects, (field, effects)
        if "sentinel online" in effects:
            assert "sentinel replaced" in effects, (field, effects)


def test_the_matrix_holds_the_known_paths(matrix):
    """Anchors read off the README's data-safety table: a port replaces, the memory limit
    is updated in place, maxmemory online with the limit in place, an alert threshold
    touches no server, a quorum replaces the Sentinels only."""
    assert matrix["host_port"] == {"server replaced"}
    assert matrix["memory_limit"] == {"server in place"}
    assert matrix["maxmemory"] == {"server online", "server in place"}
    assert matrix["alert_memory_percent"] == set()
    assert matrix["sentinel_quorum"] == {"sentinel replaced"}
    assert matrix["replicas"] == {"server removed"}
    # The admin user is who applies the online settings: a new name needs a server started with it.
    assert matrix["admin_username"] == {"server replaced", "server online"}


MATRIX_RESULTS = "change-matrix"


def test_the_documented_matrix_is_the_programs(matrix):
    rows = [
        {"key": f"{NAMESPACE}:{Settings.model_fields[field].alias}", "base": base, "effects": sorted(matrix[field])}
        for field, (_, base) in CHANGES.items()
    ]
    folder = results.requested()
    if folder is not None:
        conditions = "each setting key changed alone, on the staging stack file or the base named, under Pulumi's mocks"
        document = results.document(MATRIX_RESULTS, conditions, [], results.commit_of(ROOT))
        results.write(folder, {**document, "keys": rows})
    path = ROOT / results.RESULTS_DIR / f"{MATRIX_RESULTS}.json"
    committed = json.loads(path.read_text())["keys"] if path.exists() else None
    assert committed == rows, f"run this module with {results.RESULTS_ENV}=$PWD/results, then bizosaas-redis docs"
