"""Pulumi components: the Redis service (one container, or a node of the sentinel
topology), its Sentinels and its optional metrics exporter."""

from bizosaas_redis_pulumi.components.exporter import RedisExporter
from bizosaas_redis_pulumi.components.redis_service import NodeOf, RedisService
from bizosaas_redis_pulumi.components.sentinel import RedisSentinel

__all__ = ["NodeOf", "RedisExporter", "RedisSentinel", "RedisService"]
