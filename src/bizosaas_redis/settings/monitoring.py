"""Monitoring: the thresholds `bizosaas-redis monitor` and the Prometheus rules share, and
the redis_exporter sidecar."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field
from pydantic.alias_generators import to_camel

from bizosaas_redis.settings.values import MODEL_CONFIG, ImageRef, Port, Problems, Seconds, online_acl

if TYPE_CHECKING:
    from bizosaas_redis.settings.model import Settings

# The runbooks page in this repository: one section per alert (bizosaas-redis docs).
RUNBOOKS_PAGE = "docs/runbooks.md"


class MonitoringSettings(BaseModel):
    model_config = MODEL_CONFIG

    alert_memory_percent: int = Field(
        80, ge=1, le=100, description="WARN when used memory exceeds this % of maxmemory."
    )
    alert_memory_critical_percent: int = Field(95, ge=1, le=100, description="CRIT above this % of maxmemory.")
    alert_clients_percent: int = Field(90, ge=1, le=100, description="WARN when clients exceed this % of maxclients.")
    alert_clients_critical_percent: int = Field(98, ge=1, le=100, description="CRIT above this % of maxclients.")
    alert_hit_rate_percent: int = Field(
        80, ge=0, le=100, description="WARN when the keyspace hit rate falls below this %."
    )
    alert_hit_rate_critical_percent: int = Field(50, ge=0, le=100, description="CRIT below this hit rate %.")
    alert_evictions_per_second: int = Field(1000, ge=1, description="WARN above this many evictions per second.")
    alert_evictions_critical_per_second: int = Field(10_000, ge=1, description="CRIT above this many evictions/s.")
    alert_last_save_age: Seconds = Field(
        3600, gt=0, description="WARN when the last successful RDB save is older than this (s), RDB on."
    )
    runbook_url: str = Field(
        RUNBOOKS_PAGE,
        min_length=1,
        description="Where the runbooks page is published: each alert's `runbook_url` annotation is this plus "
        "`#<alert name in lower case>`, and the dashboard links to it. The default is the page's path in this "
        "repository; set the URL your Git host or docs site shows it at.",
    )
    exporter_enabled: bool = Field(
        False,
        description="Run a redis_exporter sidecar for Prometheus (its ACL user is set on the running servers).",
        json_schema_extra=online_acl(),
    )
    exporter_image: ImageRef = Field("oliver006/redis_exporter:v1.62.0", description="redis_exporter image.")
    exporter_port: Port = Field(
        9121,
        description="Host port of the exporter's /metrics (on publishAddress); with topology sentinel, node N's "
        "exporter listens on its host's address at exporterPort + N, Sentinel j's at exporterPort + replicas + j.",
    )


def check(s: Settings, problems: Problems) -> None:
    for warn, crit in (
        ("alert_memory_percent", "alert_memory_critical_percent"),
        ("alert_clients_percent", "alert_clients_critical_percent"),
        ("alert_evictions_per_second", "alert_evictions_critical_per_second"),
    ):
        if getattr(s, crit) < getattr(s, warn):
            problems.add(crit, f"must be at least {to_camel(warn)} ({getattr(s, warn)})", warn)
    if s.alert_hit_rate_critical_percent > s.alert_hit_rate_percent:
        problems.add(
            "alert_hit_rate_critical_percent",
            f"must not exceed alertHitRatePercent ({s.alert_hit_rate_percent})",
            "alert_hit_rate_percent",
        )
    if s.exporter_enabled and s.exporter_port == s.host_port:
        problems.add("exporter_port", "must differ from hostPort", "exporter_enabled", "host_port")
