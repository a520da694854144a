"""Prometheus alerting rules for redis_exporter metrics, from the stack's thresholds.

The same settings drive bizosaas-redis monitor, so the two never disagree. Targets are
selected by the scrape job `bizosaas-redis-<stack>` (docs/reference/monitoring.md).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import yaml

from bizosaas_redis import topology
from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings import Settings, instances
from bizosaas_redis_ops.check.monitor import MIN_LOOKUPS_FOR_HIT_RATE


class AlertsError(BizosaasRedisError):
    pass


# What an operator does when the alert fires (the rules' `action` annotation, the runbooks page).
ACTIONS = {
    "RedisDown": "`docker logs` of the container and `bizosaas-redis doctor --stack <stack>`; "
    "`bizosaas-redis up --stack <stack>` starts it again (the data is on its volume)",
    "RedisMemoryHigh": "Eviction is near: look for keys without a TTL and for growth (`bizosaas-redis monitor`); "
    "raise `maxmemory` and `memoryLimit` if the working set grew",
    "RedisMemoryCritical": "The cache is evicting: raise `maxmemory` and `memoryLimit` with `bizosaas-redis up`, "
    "or find the keys without a TTL",
    "RedisHitRateLow": "Look at evictions (keys dropped too early), TTLs too short, and key names that changed "
    "with a release",
    "RedisHitRateCritical": "As RedisHitRateLow; the consumers now mostly miss and load their sources",
    "RedisEvictionsHigh": "maxmemory is small for the working set: raise it; watch the hit rate",
    "RedisEvictionsCritical": "maxmemory is far too small for the working set: raise it now",
    "RedisClientsHigh": "A pool too large or a client leaking connections: `CLIENT LIST` names them; raise "
    "`maxclients` only with the container's file limit",
    "RedisClientsCritical": "As RedisClientsHigh, now: new connections are about to be refused (the exporter's "
    "too, which then reports Redis down)",
    "RedisRejectedConnections": "Connections were refused at maxclients: as RedisClientsHigh; resolves 5 minutes "
    "after the last refusal",
    "RedisPersistenceFailed": "Disk full or not writable: `docker logs` names the error; Redis refuses writes "
    "while snapshots fail; free space, then `bizosaas-redis backup` to check a save works",
    "RedisLastSaveTooOld": "Snapshots are not written: look for failed saves in `docker logs` and for disk "
    "space; `bizosaas-redis backup` forces one",
    "RedisDurableMemoryHigh": "When full it refuses writes: raise `durable.maxmemory`; look for a Celery backlog, "
    "streams without MAXLEN, sessions without a TTL",
    "RedisDurableWritesRefused": "Queues, sessions and streams are failing now: raise `durable.maxmemory` with "
    "`bizosaas-redis up` at once, then find what grew; resolves 5 minutes after the last refusal",
    # Topology sentinel: the nodes' exporters (one job per instance, a target per node).
    "RedisNoPrimary": "No node is the primary: writes fail. `bizosaas-redis monitor --stack <stack>` shows what "
    "the Sentinels see; bring a node's host back; a failover longer than failoverTimeout needs one node up",
    "RedisReplicaLinkDown": "A replica lost its primary: `docker logs` of that node (auth, network between "
    "hosts); it resyncs by itself once it reaches the primary",
    "RedisReplicasBelowMinimum": "Fewer replicas follow the primary than minReplicasToWrite (at least one): "
    "with minReplicasToWrite the primary refuses writes, and a failover would lose what only it holds; "
    "bring the replicas' nodes or hosts back",
    "RedisReplicasMissing": "A replica is missing: the stack survives one fault less; find its node "
    "(`bizosaas-redis monitor`) and bring it or its host back",
    "RedisReplicationLagHigh": "A replica falls behind: network or disk between the hosts; past minReplicasMaxLag "
    "it no longer counts toward minReplicasToWrite",
    "RedisFailoverHappened": "A replica became the primary (a failover, or a planned handover): if nobody changed "
    "the stack, find why the old primary stopped answering; resolves 10 minutes later",
    # Topology sentinel: the Sentinels' exporters (a job of their own, a target per Sentinel).
    "RedisSentinelDown": "A Sentinel or its exporter does not answer: `docker logs` of the Sentinel on that host; "
    "the instance survives one Sentinel fault fewer before failovers stop",
    "RedisSentinelQuorumLost": "No Sentinel reaches a majority of the Sentinels (SENTINEL CKQUORUM): a primary "
    "that fails now stays failed. Bring Sentinels or their hosts back at once (`bizosaas-redis monitor` shows "
    "which answer)",
}


def runbook_url(settings: Settings, alert: str) -> str:
    """The alert's section of the runbooks page (its heading's anchor)."""
    return f"{settings.runbook_url}#{alert.lower()}"


def job(settings: Settings) -> str:
    """The scrape job of an instance: `bizosaas-redis-<stack>`, `-durable` for a split stack's durable one."""
    return f"bizosaas-redis-{settings.instance_id}"


def sentinel_job(settings: Settings) -> str:
    """The scrape job of an instance's Sentinels' exporters (topology sentinel): `<job>-sentinel`.
    Apart from the nodes', whose rules would read a Sentinel as a Redis down or no primary."""
    return f"{job(settings)}-sentinel"


Rule = Callable[..., dict[str, Any]]


def rules(settings: Settings) -> list[dict[str, Any]]:
    """The instance's alerting rules, from the thresholds `monitor` judges with."""
    s = settings
    sel = f'job="{job(s)}"'
    memory = f"100 * redis_memory_used_bytes{{{sel}}} / (redis_memory_max_bytes{{{sel}}} > 0)"
    rule = functools.partial(_rule, s)
    if s.role == "durable":
        memory_rules = _durable_memory_rules(rule, s, sel, memory)
    else:
        hits = f"rate(redis_keyspace_hits_total{{{sel}}}[5m])"
        misses = f"rate(redis_keyspace_misses_total{{{sel}}}[5m])"
        # Judged only with enough lookups, as `monitor` does: a near-idle cache's rate is noise.
        min_lookups_per_second = round(MIN_LOOKUPS_FOR_HIT_RATE / 300, 3)
        hit_rate = f"100 * {hits} / ({hits} + {misses} > {min_lookups_per_second})"
        evictions = f"rate(redis_evicted_keys_total{{{sel}}}[1m])"
        memory_rules = _memory_and_eviction_rules(rule, s, memory, hit_rate, evictions)
    return [
        rule("RedisDown", f"redis_up{{{sel}}} == 0", "critical", "1m", "Redis is down"),
        *memory_rules,
        *_client_rules(rule, s, sel),
        *_persistence_rules(rule, s, sel),
        *(_replication_rules(rule, s, sel) + _sentinel_rules(rule, s) if s.topology == "sentinel" else []),
    ]


def _rule(s: Settings, name: str, expr: str, severity: str, duration: str, summary: str) -> dict[str, Any]:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity, "stack": s.stack, "service": "bizosaas-redis", "role": s.role},
        "annotations": {
            "summary": summary,
            "description": f"{summary} (stack {s.stack}, {{{{ $labels.instance }}}})",
            "action": ACTIONS[name],
            "runbook_url": runbook_url(s, name),
        },
    }


def _durable_memory_rules(rule: Rule, s: Settings, sel: str, memory: str) -> list[dict[str, Any]]:
    """Full means refused writes (noeviction): lost Celery tasks, sessions, stream events."""
    oom = f'redis_errors_total{{{sel},err="OOM"}}'
    return [
        rule(
            "RedisDurableMemoryHigh",
            f"{memory} > {s.alert_memory_percent}",
            "critical",
            "2m",
            f"The durable Redis uses more than {s.alert_memory_percent} % of maxmemory; when full it refuses "
            "writes (queues, sessions, streams)",
        ),
        rule(
            "RedisDurableWritesRefused",
            # The exporter has no OOM series until the first refusal, which then appears
            # already above 0: increase() alone misses it.
            f"increase({oom}[5m]) > 0 or ({oom} unless {oom} offset 5m)",
            "critical",
            "0m",
            "The durable Redis refused writes: maxmemory reached (OOM)",
        ),
    ]


def _client_rules(rule: Rule, s: Settings, sel: str) -> list[dict[str, Any]]:
    clients = f"100 * redis_connected_clients{{{sel}}} / redis_config_maxclients{{{sel}}}"
    return [
        rule(
            "RedisClientsHigh",
            f"{clients} > {s.alert_clients_percent} <= {s.alert_clients_critical_percent}",
            "warning",
            "5m",
            f"More than {s.alert_clients_percent} % of maxclients are connected",
        ),
        rule(
            "RedisClientsCritical",
            f"{clients} > {s.alert_clients_critical_percent}",
            "critical",
            "2m",
            f"More than {s.alert_clients_critical_percent} % of maxclients are connected",
        ),
        rule(
            "RedisRejectedConnections",
            f"increase(redis_rejected_connections_total{{{sel}}}[5m]) > 0",
            "warning",
            "0m",
            "Redis rejected connections (maxclients reached)",
        ),
    ]


def _replication_rules(rule: Rule, s: Settings, sel: str) -> list[dict[str, Any]]:
    """Topology sentinel: the primary, its replicas and their lag, from the nodes' exporters
    (the job holds one target per node), with the bounds `monitor` judges by."""
    primary = f'redis_instance_info{{{sel},role="master"}}'
    followers = f"sum by (job) (redis_connected_slaves{{{sel}}} and on (instance) {primary})"
    floor = max(s.min_replicas_to_write or 0, 1)
    refused = " (writes are refused)" if s.min_replicas_to_write else ""
    return [
        rule("RedisNoPrimary", f"absent({primary})", "critical", "1m", "No node of the instance is the primary"),
        rule(
            "RedisReplicaLinkDown",
            f"redis_master_link_up{{{sel}}} == 0",
            "critical",
            "1m",
            "A replica's link to its primary is down",
        ),
        rule(
            "RedisReplicasBelowMinimum",
            f"{followers} < {floor}",
            "critical",
            "1m",
            f"Fewer than {floor} replica(s) follow the primary{refused}",
        ),
        rule(
            "RedisReplicasMissing",
            f"{followers} < {s.replicas} >= {floor}",
            "warning",
            "5m",
            f"Fewer than {s.replicas} replicas follow the primary",
        ),
        rule(
            "RedisReplicationLagHigh",
            f"max by (job) (redis_connected_slave_lag_seconds{{{sel}}}) > {s.min_replicas_max_lag / 2:g}",
            "warning",
            "1m",
            f"A replica lags more than {s.min_replicas_max_lag / 2:g} s (minReplicasMaxLag {s.min_replicas_max_lag})",
        ),
        rule(
            "RedisFailoverHappened",
            # A node that is the primary now and was a replica 10 minutes ago.
            f'{primary} and on (instance) (redis_instance_info{{{sel},role="slave"}} offset 10m)',
            "warning",
            "0m",
            "A replica was promoted to primary in the last 10 minutes",
        ),
    ]


def _sentinel_rules(rule: Rule, s: Settings) -> list[dict[str, Any]]:
    """Topology sentinel: the Sentinels, from their exporters (each reports what its Sentinel
    sees). Failover needs a majority of the Sentinels to agree; CKQUORUM is each one's check."""
    sel = f'job="{sentinel_job(s)}"'
    return [
        rule(
            "RedisSentinelDown",
            f"up{{{sel}}} == 0 or redis_up{{{sel}}} == 0",
            "warning",
            "5m",
            "A Sentinel does not answer",
        ),
        rule(
            "RedisSentinelQuorumLost",
            # No Sentinel that answers can reach a majority (and none answering is the same);
            # absent() of a comparison keeps no label: the job is set again for routing.
            f'label_replace(absent(redis_sentinel_master_ckquorum_status{{{sel}}} == 1), "job", "{sentinel_job(s)}", '
            '"", "")',
            "critical",
            "1m",
            "No Sentinel reaches a majority of the Sentinels: the primary cannot fail over",
        ),
    ]


def _persistence_rules(rule: Rule, s: Settings, sel: str) -> list[dict[str, Any]]:
    out = [
        rule(
            "RedisPersistenceFailed",
            f"redis_rdb_last_bgsave_status{{{sel}}} == 0 or redis_aof_last_write_status{{{sel}}} == 0",
            "critical",
            "0m",
            "Redis failed to persist (RDB save or AOF write)",
        )
    ]
    if s.save:
        out.append(
            rule(
                "RedisLastSaveTooOld",
                # Redis saves only when keys changed: an idle server's old save is no problem.
                f"time() - redis_rdb_last_save_timestamp_seconds{{{sel}}} > {s.alert_last_save_age}"
                f" and redis_rdb_changes_since_last_save{{{sel}}} > 0",
                "warning",
                "5m",
                f"No successful RDB save for more than {s.alert_last_save_age} s",
            )
        )
    return out


def _memory_and_eviction_rules(
    rule: Rule, s: Settings, memory: str, hit_rate: str, evictions: str
) -> list[dict[str, Any]]:
    """A cache (or the one instance of layout single) evicts: its memory, hit rate and eviction rules."""
    return [
        rule(
            "RedisMemoryHigh",
            f"{memory} > {s.alert_memory_percent} <= {s.alert_memory_critical_percent}",
            "warning",
            "5m",
            f"Redis uses more than {s.alert_memory_percent} % of maxmemory",
        ),
        rule(
            "RedisMemoryCritical",
            f"{memory} > {s.alert_memory_critical_percent}",
            "critical",
            "2m",
            f"Redis uses more than {s.alert_memory_critical_percent} % of maxmemory",
        ),
        rule(
            "RedisHitRateLow",
            f"{hit_rate} < {s.alert_hit_rate_percent} >= {s.alert_hit_rate_critical_percent}",
            "warning",
            "15m",
            f"Keyspace hit rate below {s.alert_hit_rate_percent} %",
        ),
        rule(
            "RedisHitRateCritical",
            f"{hit_rate} < {s.alert_hit_rate_critical_percent}",
            "critical",
            "15m",
            f"Keyspace hit rate below {s.alert_hit_rate_critical_percent} %",
        ),
        rule(
            "RedisEvictionsHigh",
            f"{evictions} > {s.alert_evictions_per_second} <= {s.alert_evictions_critical_per_second}",
            "warning",
            "5m",
            f"More than {s.alert_evictions_per_second} evictions per second",
        ),
        rule(
            "RedisEvictionsCritical",
            f"{evictions} > {s.alert_evictions_critical_per_second}",
            "critical",
            "2m",
            f"More than {s.alert_evictions_critical_per_second} evictions per second",
        ),
    ]


def scrape_configs(settings: Settings) -> list[dict[str, Any]]:
    """Prometheus scrape jobs for the stack's exporters, named as the rules select them: an
    instance's nodes, and with topology sentinel its Sentinels."""
    jobs = []
    for instance in instances(settings):
        if not instance.exporter_enabled:
            continue
        jobs.append({"job_name": job(instance), "static_configs": [{"targets": topology.exporter_endpoints(instance)}]})
        if instance.topology == "sentinel":
            targets = topology.exporter_endpoints(instance, "sentinel")
            jobs.append({"job_name": sentinel_job(instance), "static_configs": [{"targets": targets}]})
    return jobs


def render_scrape_configs(settings: Settings) -> str:
    """The scrape jobs as Prometheus's configuration takes them (`scrape_configs:`)."""
    if not settings.exporter_enabled:
        raise AlertsError(f"stack {settings.stack}: exporterEnabled is false, nothing to scrape")
    return yaml.safe_dump({"scrape_configs": scrape_configs(settings)}, sort_keys=False)


def render(settings: Settings) -> str:
    document = {"groups": [{"name": job(instance), "rules": rules(instance)} for instance in instances(settings)]}
    header = (
        f"# Prometheus alerting rules for the {settings.stack} stack (redis_exporter metrics).\n"
        "# Generated by bizosaas-redis alert-rules from the stack's settings; do not edit.\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False, width=200)
