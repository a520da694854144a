"""Memory and clients: maxmemory and its policy, the container's limit, connections."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from bizosaas_redis.settings.values import MODEL_CONFIG, Problems, Seconds, Size, format_size, online

if TYPE_CHECKING:
    from bizosaas_redis.settings.model import Settings

MAXMEMORY_POLICIES = (
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
)
# Headroom the container needs above maxmemory: a BGSAVE/AOF rewrite fork copies
# pages on write, and client/replication buffers are not counted in maxmemory.
# Measured (tests/integration/test_faults.py): writing flat out while BGSAVE and AOF rewrites
# fork peaks at 1.64 x maxmemory in RSS at 128mb-256mb and up to 1.8 x at 32mb (copy-on-write
# plus a fixed overhead); 1.5 x was OOM-killed at 32mb, 128mb and 256mb. The container gets
# twice maxmemory, and at least maxmemory + 64 MB for small ones.
MIN_MEMORY_HEADROOM = 2.0
MIN_MEMORY_OVERHEAD = 64 * 1024**2


def minimum_memory_limit(maxmemory: int) -> int:
    return max(math.ceil(MIN_MEMORY_HEADROOM * maxmemory), maxmemory + MIN_MEMORY_OVERHEAD)


class MemorySettings(BaseModel):
    model_config = MODEL_CONFIG

    maxmemory: Size = Field(
        2 * 1024**3, description="Redis `maxmemory` (units: kb, mb, gb).", json_schema_extra=online("maxmemory")
    )
    maxmemory_policy: Literal[MAXMEMORY_POLICIES] = Field(  # type: ignore[valid-type]
        "allkeys-lru",
        description="Eviction policy when maxmemory is reached.",
        json_schema_extra=online("maxmemory-policy"),
    )
    maxmemory_samples: int = Field(
        5, ge=1, le=64, description="Keys sampled per eviction.", json_schema_extra=online("maxmemory-samples")
    )
    memory_limit: Size | None = Field(
        None,
        description="Container memory limit. Default and minimum: 2 × maxmemory, at least maxmemory + 64mb "
        "(writing during a snapshot, the fork's copy-on-write grows RSS well past maxmemory).",
    )
    maxclients: int = Field(
        1000, ge=1, le=100_000, description="Redis `maxclients`.", json_schema_extra=online("maxclients")
    )
    timeout: Seconds = Field(
        300, description="Close client connections idle this long (s).", json_schema_extra=online("timeout")
    )
    tcp_keepalive: Seconds = Field(
        300, description="TCP keepalive probe interval (s).", json_schema_extra=online("tcp-keepalive")
    )

    @property
    def memory_limit_bytes(self) -> int:
        if self.memory_limit is not None:
            return self.memory_limit
        return minimum_memory_limit(self.maxmemory)

    @property
    def memory_limit_mb(self) -> int:
        # The Docker provider takes memory in MB.
        return math.ceil(self.memory_limit_bytes / 1024**2)


def check(s: Settings, problems: Problems) -> None:
    if s.memory_limit is not None and s.memory_limit < minimum_memory_limit(s.maxmemory):
        problems.add(
            "memory_limit",
            f"must be at least {MIN_MEMORY_HEADROOM} × maxmemory and maxmemory + 64mb "
            f"({format_size(minimum_memory_limit(s.maxmemory))}) "
            "for fork copy-on-write and client buffers",
            "maxmemory",
            value=format_size(s.memory_limit),
            show=True,
        )
