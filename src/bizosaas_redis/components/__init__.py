"""Pulumi components: the Redis service (one container, or a node of the sentinel
topology), its Sentinels and its optional metrics exporter."""

from .exporter import RedisExporter
from .redis_service import NodeOf, RedisService
from .sentinel import RedisSentinel

__all__ = ["NodeOf", "RedisExporter", "RedisSentinel", "RedisService"]
