"""What consumers get: URLs and the environment a service puts in its .env."""

from __future__ import annotations

from urllib.parse import quote

from . import redis_conf
from .settings import Settings


def redis_url(settings: Settings, username: str | None, password: str | None, db: int) -> str:
    """`redis[s]://[user:password@]host:port/db` reaching the published port."""
    scheme = "rediss" if settings.tls_enabled else "redis"
    auth = f"{quote(username or 'default', safe='')}:{quote(password, safe='')}@" if password else ""
    return f"{scheme}://{auth}{settings.url_host}:{settings.host_port}/{db}"


def consumer_env(settings: Settings) -> dict[str, str]:
    """What a service on the network puts in its .env (the password is a separate secret)."""
    socket = (
        # Mount the volume at the same path and run with group 1000 to use it.
        {"REDIS_SOCKET_PATH": redis_conf.SOCKET_PATH, "REDIS_SOCKET_VOLUME": settings.socket_volume_name}
        if settings.unix_socket
        else {}
    )
    return {
        **socket,
        "REDIS_HOST": settings.name,
        "REDIS_PORT": str(redis_conf.CONTAINER_PORT),
        "REDIS_USERNAME": settings.app_username,
        "REDIS_DB": str(settings.cache_db),
        "REDIS_SSL": "true" if settings.tls_enabled else "false",
        "REDIS_CACHE_TTL": str(settings.cache_ttl),
        "REDIS_SESSION_TTL": str(settings.session_ttl),
        "REDIS_STREAM_MAXLEN": str(settings.stream_maxlen),
        "CELERY_BROKER_DB": str(settings.celery_broker_db),
        "CELERY_RESULT_DB": str(settings.celery_result_db),
        "REDIS_MAX_CONNECTIONS": str(settings.maxclients),
    }
