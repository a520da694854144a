"""A Grafana dashboard of a stack's redis_exporter metrics, to import into Grafana.

Its threshold lines are the stack's alert thresholds, the ones the Prometheus rules and
`bizosaas-redis monitor` use. The `job` variable selects the stack's scrape jobs
(`bizosaas-redis-<stack>`, `-durable` for a split stack's durable instance).
"""

from __future__ import annotations

import json
from typing import Any

from bizosaas_redis.settings import Settings

from .alerts import job

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


def panels(s: Settings) -> list[dict[str, Any]]:
    hits, misses = f"rate(redis_keyspace_hits_total{{{SEL}}}[5m])", f"rate(redis_keyspace_misses_total{{{SEL}}}[5m])"
    high = (("orange", s.alert_memory_percent), ("red", s.alert_memory_critical_percent))
    return [
        _panel("Up", "none", [(f"redis_up{{{SEL}}}", "{{job}}")]),
        _panel(
            "Memory used, % of maxmemory",
            "percent",
            [(f"100 * redis_memory_used_bytes{{{SEL}}} / (redis_memory_max_bytes{{{SEL}}} > 0)", "{{job}}")],
            _steps(*high),
        ),
        _panel(
            "Memory",
            "bytes",
            [
                (f"redis_memory_used_bytes{{{SEL}}}", "{{job}} used"),
                (f"redis_memory_max_bytes{{{SEL}}}", "{{job}} maxmemory"),
                (f"redis_memory_used_rss_bytes{{{SEL}}}", "{{job}} RSS"),
            ],
        ),
        _panel(
            "Keyspace hit rate",
            "percent",
            [(f"100 * {hits} / ({hits} + {misses})", "{{job}}")],
            # Red below the critical rate, orange up to the warning one.
            {
                "mode": "absolute",
                "steps": [
                    {"color": "red", "value": None},
                    {"color": "orange", "value": s.alert_hit_rate_critical_percent},
                    {"color": "green", "value": s.alert_hit_rate_percent},
                ],
            },
        ),
        _panel("Commands per second", "ops", [(f"rate(redis_commands_processed_total{{{SEL}}}[1m])", "{{job}}")]),
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
                (f"redis_connected_clients{{{SEL}}}", "{{job}} connected"),
                (f"redis_blocked_clients{{{SEL}}}", "{{job}} blocked"),
                (f"increase(redis_rejected_connections_total{{{SEL}}}[5m])", "{{job}} refused in 5 min"),
            ],
        ),
        _panel(
            "Evictions and expirations per second",
            "short",
            [
                (f"rate(redis_evicted_keys_total{{{SEL}}}[1m])", "{{job}} evicted"),
                (f"rate(redis_expired_keys_total{{{SEL}}}[1m])", "{{job}} expired"),
            ],
            _steps(("orange", s.alert_evictions_per_second), ("red", s.alert_evictions_critical_per_second)),
        ),
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
                (f"redis_rdb_changes_since_last_save{{{SEL}}}", "{{job}} changes not saved"),
                (f"redis_rdb_last_bgsave_status{{{SEL}}}", "{{job}} last RDB save ok"),
                (f"redis_aof_last_write_status{{{SEL}}}", "{{job}} last AOF write ok"),
                (f"redis_aof_rewrite_in_progress{{{SEL}}}", "{{job}} AOF rewrite running"),
            ],
        ),
        _panel(
            "Replication",
            "short",
            [
                (f"redis_connected_slaves{{{SEL}}}", "{{job}} replicas"),
                (f"rate(redis_master_repl_offset{{{SEL}}}[1m])", "{{job}} replication bytes/s"),
            ],
        ),
        _panel("Keys", "short", [(f"sum by (job) (redis_db_keys{{{SEL}}})", "{{job}}")]),
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
