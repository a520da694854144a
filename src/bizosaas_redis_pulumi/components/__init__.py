"""Pulumi components: a Redis server (one container, or a node of the sentinel
topology), the sentinel topology's cluster of nodes and Sentinels, and the optional
metrics exporter."""

from bizosaas_redis_pulumi.components.exporter import RedisExporter
from bizosaas_redis_pulumi.components.redis_server import NodeOf, Passwords, RedisServer
from bizosaas_redis_pulumi.components.sentinel import RedisSentinel
from bizosaas_redis_pulumi.components.sentinel_cluster import SentinelCluster

__all__ = ["NodeOf", "Passwords", "RedisExporter", "RedisSentinel", "RedisServer", "SentinelCluster"]
