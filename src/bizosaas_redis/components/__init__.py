"""Pulumi components: the Redis service and its optional metrics exporter."""

from .exporter import RedisExporter
from .redis_service import RedisService

__all__ = ["RedisExporter", "RedisService"]
