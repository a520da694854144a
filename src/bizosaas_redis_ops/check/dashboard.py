"""A Grafana dashboard of a stack's redis_exporter metrics, to import into Grafana.

Its threshold lines are the stack's alert thresholds, the ones the Prometheus rules and
`bizosaas-redis monitor` use. The `job` variable selects the stack's scrape jobs
(`bizosaas-redis-<stack>`, `-durable` for a split stack's durable instance).
"""

from __future__ import annotations

import json
from typing import Any

from bizosaas_redis.settings import Settings
from bizosaas_redis_ops.check.alerts import job

DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
SEL = 'job=~"$job"'
WIDTH, HEIGHT = 12, 8


def _steps(*limits: tuple[str, float]) -> dict[str, Any]:
    steps = [{"color": "green", "value": None}, *({"color": c, "value": v} for c, v in limits)]
    return {"mode": "absolute", "steps": steps}


def _panel(title: str, unit: str, targets: list[tuple[str, str]], thresholds: dict[str, Any] | None = None) -> dict:
    defaults: dict[str, Any] = {"unit": unit}
    if thresholds:
        defaults["thresholds"] = thresholds
        defaults["custom"] = {"thresholdsStyle": {"mode": "line"}}
    return {
        "type": "timeseries",
        "title": title,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def _metric(name: str, legend: str = "{{job}}", window: str | None = None) -> tuple[str, str]:
    """A target: the metric of the selected jobs, as a rate over `window` when given."""
    selected = f"{name}{{{SEL}}}"
    return (f"rate({selected}[{window}])" if window else selected, legend)


def _memory_panels(s: Settings) -> list[dict[str, Any]]:
    used, limit = "redis_memory_used_bytes", "redis_memory_max_bytes"
    return [
        _panel(
            "Memory used, % of maxmemory",
            "percent",
            [(f"100 * {used}{{{SEL}}} / ({limit}{{{SEL}}} > 0)", "{{job}}")],
            _steps(("orange", s.alert_memory_percent), ("red", s.alert_memory_critical_percent)),
        ),
        _panel(
            "Memory",
            "bytes",
            [
                _metric(used, "{{job}} used"),
                _metric(limit, "{{job}} maxmemory"),
                _metric("redis_memory_used_rss_bytes", "{{job}} RSS"),
            ],
        ),
    ]


def _traffic_panels(s: Settings) -> list[dict[str, Any]]:
    hits, _ = _metric("redis_keyspace_hits_total", window="5m")
    misses, _ = _metric("redis_keyspace_misses_total", window="5m")
    # Red below the critical rate, orange up to the warning one.
    low = [("red", None), ("orange", s.alert_hit_rate_critical_percent), ("green", s.alert_hit_rate_percent)]
    return [
        _panel(
            "Keyspace hit rate",
            "percent",
            [(f"100 * {hits} / ({hits} + {misses})", "{{job}}")],
            {"mode": "absolute", "steps": [{"color": color, "value": value} for color, value in low]},
        ),
        _panel("Commands per second", "ops", [_metric("redis_commands_processed_total", window="1m")]),
        _panel(
            "Evictions and expirations per second",
            "short",
            [
                _metric("redis_evicted_keys_total", "{{job}} evicted", "1m"),
                _metric("redis_expired_keys_total", "{{job}} expired", "1m"),
            ],
            _steps(("orange", s.alert_evictions_per_second), ("red", s.alert_evictions_critical_per_second)),
        ),
        _panel("Keys", "short", [(f"sum by (job) (redis_db_keys{{{SEL}}})", "{{job}}")]),
    ]


def _client_panels(s: Settings) -> list[dict[str, Any]]:
    return [
        _panel(
            "Clients, % of maxclients",
            "percent",
            [(f"100 * redis_connected_clients{{{SEL}}} / redis_config_maxclients{{{SEL}}}", "{{job}}")],
            _steps(("orange", s.alert_clients_percent), ("red", s.alert_clients_critical_percent)),
        ),
        _panel(
            "Clients",
            "short",
            [
                _metric("redis_connected_clients", "{{job}} connected"),
                _metric("redis_blocked_clients", "{{job}} blocked"),
                (f"increase(redis_rejected_connections_total{{{SEL}}}[5m])", "{{job}} refused in 5 min"),
            ],
        ),
    ]


def _persistence_panels(s: Settings) -> list[dict[str, Any]]:
    return [
        _panel(
            "Seconds since the last RDB save",
            "s",
            [(f"time() - redis_rdb_last_save_timestamp_seconds{{{SEL}}}", "{{job}}")],
            _steps(("orange", s.alert_last_save_age)),
        ),
        _panel(
            "Persistence",
            "short",
            [
                _metric("redis_rdb_changes_since_last_save", "{{job}} changes not saved"),
                _metric("redis_rdb_last_bgsave_status", "{{job}} last RDB save ok"),
                _metric("redis_aof_last_write_status", "{{job}} last AOF write ok"),
                _metric("redis_aof_rewrite_in_progress", "{{job}} AOF rewrite running"),
            ],
        ),
        _panel(
            "Replication",
            "short",
            [
                _metric("redis_connected_slaves", "{{job}} replicas"),
                _metric("redis_master_repl_offset", "{{job}} replication bytes/s", "1m"),
            ],
        ),
    ]


def panels(s: Settings) -> list[dict[str, Any]]:
    """Availability, memory, traffic, clients, persistence and replication, in that order."""
    return [
        _panel("Up", "none", [_metric("redis_up")]),
        *_memory_panels(s),
        *_traffic_panels(s),
        *_client_panels(s),
        *_persistence_panels(s),
    ]


def dashboard(settings: Settings) -> dict[str, Any]:
    laid_out = []
    for index, panel in enumerate(panels(settings)):
        position = {"h": HEIGHT, "w": WIDTH, "x": (index % 2) * WIDTH, "y": (index // 2) * HEIGHT}
        laid_out.append({"id": index + 1, "gridPos": position, **panel})
    jobs = f"{job(settings)}.*"
    return {
        "__inputs": [
            {
                "name": "DS_PROMETHEUS",
                "label": "Prometheus",
                "type": "datasource",
                "pluginId": "prometheus",
                "pluginName": "Prometheus",
            }
        ],
        "title": f"BizOSaaS Redis ({settings.stack})",
        "uid": f"bizosaas-redis-{settings.stack}",
        "tags": ["redis", "bizosaas"],
        "links": [{"title": "Runbooks", "type": "link", "url": settings.runbook_url, "targetBlank": True}],
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {
            "list": [
                {
                    "name": "job",
                    "label": "instance",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": f'label_values(redis_up{{job=~"{jobs}"}}, job)',
                    "regex": "",
                    "includeAll": True,
                    "multi": True,
                    "refresh": 2,
                }
            ]
        },
        "panels": laid_out,
    }


def render(settings: Settings) -> str:
    return json.dumps(dashboard(settings), indent=2) + "\n"
