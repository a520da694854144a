"""The change matrix: every setting key changed alone, and what the program then does to
the running servers and Sentinels, under Pulumi's mocks.

Each key of the settings model gets a new value (CHANGES; a key added to the model
without one fails `test_every_setting_key_has_a_case`). The program runs with the staging
stack file, and with the sentinel topology for the keys that only act there, before and
after the change; what differs is sorted into effects:
- `replaced`: a server's (or a Sentinel's) container or its files change in a way the
  Docker provider replaces (everything but IN_PLACE): a restart, a handover on the
  sentinel topology;
- `in place`: only what the provider updates in place (the memory limit);
- `online`: what RedisOnlineSettings sets on the running server (or Sentinel);
- `added`, `removed`: a container the change creates or deletes (a node, a Sentinel).

Asserted: a key the settings model marks online (the configuration reference's column
"Applied without restart") never replaces a container and changes what is set online;
every other key never changes the online settings alone. What the real engine does with
them is proven by tests/integration/test_online_settings.py and test_data_safety.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from test_topology import HOSTS, PASSWORDS

import capture
from bizosaas_redis.constants import CONTAINER, LABEL_SERVICE, SERVICE_REDIS, SERVICE_SENTINEL
from bizosaas_redis.settings import Settings, online_directives, online_sentinel_options, read_stack_config, stack_file
from bizosaas_redis_pulumi.components.files import NAME_SUFFIX

STAGING = read_stack_config(stack_file("staging"))
SENTINEL = {**STAGING, "topology": "sentinel", "dockerHosts": HOSTS}
# What the Docker provider updates in place (NOTES: restart, memory, cpu); every other
# change of a container's inputs replaces it.
IN_PLACE = {"memory", "memorySwap", "restart"}
# Derived, not settable.
DERIVED = {"stack", "role"}
TLS_DIR = "/etc/redis-tls"

# Field -> (stack config values changed, on the sentinel topology?).
CHANGES: dict[str, tuple[dict[str, Any], bool]] = {
    "environment": ({"environment": "production", "publishAddress": "127.0.0.1"}, False),
    "container_name": ({"containerName": "bizosaas-redis-renamed"}, False),
    "flavour": ({"flavour": "valkey", "image": "valkey/valkey:8.1.4-alpine"}, False),
    "image": ({"image": "redis:7.4.6-alpine"}, False),
    "layout": ({"layout": "split"}, False),
    "durable": ({"layout": "split", "durable": {"maxmemory": "512mb"}}, False),
    "topology": ({"topology": "sentinel", "dockerHosts": HOSTS}, False),
    "replicas": ({"replicas": 1, "sentinelQuorum": 2}, True),
    "sentinels": ({"sentinels": 5, "sentinelQuorum": 3}, True),
    "sentinel_quorum": ({"sentinelQuorum": 3}, True),
    "sentinel_port": ({"sentinelPort": 26400}, True),
    "down_after_milliseconds": ({"downAfterMilliseconds": 7000}, True),
    "failover_timeout": ({"failoverTimeout": 20000}, True),
    "min_replicas_to_write": ({"minReplicasToWrite": 2}, True),
    "min_replicas_max_lag": ({"minReplicasMaxLag": 5}, True),
    "durable_write_replicas": ({"durableWriteReplicas": 2}, True),
    "durable_write_timeout_ms": ({"durableWriteTimeoutMs": 500}, True),
    "docker_hosts": (
        {"dockerHosts": {**HOSTS, "c": {"url": "ssh://deploy@10.0.0.14", "address": "10.0.0.14"}}},
        True,
    ),
    "placement": ({"placement": ["b", "c", "a"]}, True),
    "sentinel_placement": ({"sentinelPlacement": ["b", "c", "a"]}, True),
    "host_port": ({"hostPort": 6390}, False),
    "publish_address": ({"publishAddress": "127.0.0.1"}, False),
    "advertised_host": ({"advertisedHost": "redis.internal"}, False),
    "network_name": ({"networkName": "another-network"}, False),
    "network_external": ({"networkExternal": False}, False),
    "network_aliases": ({"networkAliases": ["redis-staging", "cache"]}, False),
    "unix_socket": ({"unixSocket": True}, False),
    "volume_name": ({"volumeName": "another_redis_data"}, False),
    "retain_data_on_destroy": ({"retainDataOnDestroy": False}, False),
    "maxmemory": ({"maxmemory": "1gb"}, False),
    "maxmemory_policy": ({"maxmemoryPolicy": "allkeys-lfu"}, False),
    "maxmemory_samples": ({"maxmemorySamples": 7}, False),
    "memory_limit": ({"memoryLimit": "6gb"}, False),
    "maxclients": ({"maxclients": 900}, False),
    "timeout": ({"timeout": 30}, False),
    "tcp_keepalive": ({"tcpKeepalive": 60}, False),
    "databases": ({"databases": 17}, False),
    "cache_db": ({"cacheDb": 3}, False),
    "celery_broker_db": ({"celeryBrokerDb": 4}, False),
    "celery_result_db": ({"celeryResultDb": 5}, False),
    "cache_ttl": ({"cacheTtl": 600}, False),
    "session_ttl": ({"sessionTtl": 3600}, False),
    "stream_maxlen": ({"streamMaxlen": 5000}, False),
    "save": ({"save": ["60 1"]}, False),
    "appendonly": ({"appendonly": False}, False),
    "appendfsync": ({"appendfsync": "always"}, False),
    "save_on_shutdown": ({"appendonly": False, "saveOnShutdown": False}, False),
    "auth_enabled": ({"authEnabled": False}, False),
    "app_username": ({"appUsername": "bizosaas"}, False),
    "admin_username": ({"adminUsername": "operator"}, False),
    "denied_commands": ({"deniedCommands": ["FLUSHALL", "FLUSHDB", "KEYS"]}, False),
    "tls_enabled": ({"tlsEnabled": True, "tlsCertsDir": TLS_DIR}, False),
    "tls_certs_dir": ({"tlsEnabled": True, "tlsCertsDir": "/etc/other-tls"}, False),
    "tls_auth_clients": ({"tlsEnabled": True, "tlsCertsDir": TLS_DIR, "tlsAuthClients": "no"}, False),
    "restart_policy": ({"restartPolicy": "always"}, False),
    "stop_grace_period": ({"stopGracePeriod": 60}, False),
    "healthcheck_interval": ({"healthcheckInterval": 20}, False),
    "healthcheck_timeout": ({"healthcheckTimeout": 3}, False),
    "healthcheck_retries": ({"healthcheckRetries": 3}, False),
    "healthcheck_start_period": ({"healthcheckStartPeriod": 30}, False),
    "log_max_size": ({"logMaxSize": "20m"}, False),
    "log_max_files": ({"logMaxFiles": 5}, False),
    "loglevel": ({"loglevel": "warning"}, False),
    "labels": ({"labels": {"team": "platform"}}, False),
    "alert_memory_percent": ({"alertMemoryPercent": 70}, False),
    "alert_memory_critical_percent": ({"alertMemoryCriticalPercent": 90}, False),
    "alert_clients_percent": ({"alertClientsPercent": 80}, False),
    "alert_clients_critical_percent": ({"alertClientsCriticalPercent": 95}, False),
    "alert_hit_rate_percent": ({"alertHitRatePercent": 70}, False),
    "alert_hit_rate_critical_percent": ({"alertHitRateCriticalPercent": 40}, False),
    "alert_evictions_per_second": ({"alertEvictionsPerSecond": 500}, False),
    "alert_evictions_critical_per_second": ({"alertEvictionsCriticalPerSecond": 5000}, False),
    "alert_last_save_age": ({"alertLastSaveAge": 7200}, False),
    "runbook_url": ({"runbookUrl": "https://runbooks.example/redis"}, False),
    "exporter_enabled": ({"exporterEnabled": False}, False),
    "exporter_image": ({"exporterImage": "oliver006/redis_exporter:v1.63.0"}, False),
    "exporter_port": ({"exporterPort": 9122}, False),
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
            if was is not None and was.plain["directives"] != resource.plain["directives"]:
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
    bases = {False: _declared(STAGING), True: _declared(SENTINEL)}
    return {
        field: _effects(bases[on_sentinel], _declared({**(SENTINEL if on_sentinel else STAGING), **change}))
        for field, (change, on_sentinel) in CHANGES.items()
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


def test_every_other_setting_never_changes_the_online_settings_alone(matrix):
    """A key not marked online that changes what is set online (TLS adds its files) also
    replaces the server: a restart-class key is never applied online only."""
    for field, effects in matrix.items():
        if field in online_directives() or field in online_sentinel_options():
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
