"""Layout: one instance for everything, or a cache beside a durable instance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, Field
from pydantic.alias_generators import to_camel

from bizosaas_redis.settings.values import MODEL_CONFIG, JsonDict, Problems

if TYPE_CHECKING:
    from bizosaas_redis.settings.model import Settings

LAYOUTS = ("single", "split")
# What an instance holds: `shared` everything (layout single); `cache` what may be evicted;
# `durable` the Celery broker and results, streams, sessions and the JWT blacklist.
Role = Literal["shared", "cache", "durable"]
# Settings both instances of a split stack share, written once at the top level.
SHARED_SETTINGS = (
    "environment",
    "flavour",
    "image",
    "publish_address",
    "advertised_host",
    "network_name",
    "network_external",
    "auth_enabled",
    "app_username",
    "admin_username",
    "tls_enabled",
    "tls_certs_dir",
    "tls_auth_clients",
    "restart_policy",
    "exporter_enabled",
    "exporter_image",
    "databases",
    "cache_db",
    "celery_broker_db",
    "celery_result_db",
    "cache_ttl",
    "session_ttl",
    "stream_maxlen",
    "layout",
    "durable",
)
# The durable instance's host ports: the cache's plus this, unless its block sets them.
# Larger than the most nodes (or Sentinels) one instance runs, so their ports never meet.
DURABLE_PORT_OFFSET = 10


class LayoutSettings(BaseModel):
    model_config = MODEL_CONFIG

    layout: Literal[LAYOUTS] = Field(  # type: ignore[valid-type]
        "single",
        description="Default `split` in production. `single`: one instance holds caches, sessions, queues and "
        "streams (as the service runs today). `split`: the top-level settings make a cache instance that may "
        "evict, and a second, durable instance (`noeviction`, AOF) holds the Celery broker and results, "
        "streams, sessions and the JWT blacklist, so that eviction never drops them.",
    )
    durable: Annotated[dict[str, Any], JsonDict] = Field(
        default_factory=dict,
        description="With layout `split`: the durable instance's own settings (keys of this table). Unset "
        "ones are the top-level ones, except: containerName `<containerName>-durable`, volumeName "
        "`<volumeName>_durable`, hostPort and exporterPort + 10, networkAliases each + `-durable`, "
        "maxmemoryPolicy `noeviction` (the only one allowed), appendonly true, save the default rules. "
        "Identity, image, network, auth, TLS and databases are shared and set once at the top level.",
    )


def default_layout(data: dict[str, Any]) -> dict[str, Any]:
    """Production keeps queues and sessions out of eviction unless its stack says otherwise;
    the role follows the layout (the durable instance is built with its role given)."""
    if "layout" not in data and data.get("environment") == "production":
        data = {**data, "layout": "split"}
    if "role" not in data:
        data = {**data, "role": "cache" if data.get("layout") == "split" else "shared"}
    return data


def check(s: Settings, problems: Problems) -> None:
    if s.role == "durable" and s.maxmemory_policy != "noeviction":
        problems.add(
            "maxmemory_policy", "must be noeviction on the durable instance: it must refuse writes, never evict"
        )
    if s.layout == "single" and s.durable:
        problems.add("durable", "is only read with layout split", "layout")
    if s.role != "durable":
        shared = sorted(to_camel(key) for key in SHARED_SETTINGS if key in s.durable)
        if shared:
            problems.add(
                "durable",
                f"may not set {', '.join(shared)}: both instances share it, set it once at the top level",
                value=shared,
                show=True,
            )
