"""What consumers get: URLs and the environment a service puts in its .env."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from bizosaas_redis import redis_conf, topology
from bizosaas_redis.settings import DURABLE_PREFIX, Role, Settings

# What a service keeps where: `cache` may be evicted; `durable` must never be (sessions,
# the JWT blacklist, streams, the Celery broker and results).
Use = Literal["cache", "durable"]


def service_roles(layout: str) -> dict[Use, Role]:
    """Which instance serves each use: the one instance, or the split stack's two."""
    if layout == "split":
        return {"cache": "cache", "durable": "durable"}
    return {"cache": "shared", "durable": "shared"}


@dataclass(frozen=True)
class InstanceNames:
    """How one instance's resources, stack outputs and secret config keys are named."""

    resource: str  # Pulumi resource name of its RedisServer
    output_prefix: str  # of its stack outputs
    config_prefix: str  # of its secret config keys

    def config_key(self, key: str) -> str:
        return self.config_prefix + key[0].upper() + key[1:] if self.config_prefix else key


def instance_names(role: Role) -> InstanceNames:
    if role == "durable":
        return InstanceNames(resource="redis-durable", output_prefix=f"{DURABLE_PREFIX}_", config_prefix=DURABLE_PREFIX)
    # The cache of a split stack keeps the names of layout single: on a switch it stays the same
    # resource (its new role label replaces its container, on its volume), not a second one.
    return InstanceNames(resource="redis", output_prefix="", config_prefix="")


def with_db(url: str, db: int) -> str:
    """The URL pointed at database `db` (redis-py lets a URL's /db win over a db= argument)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{db}", parts.query, ""))


def redis_url(settings: Settings, username: str | None, password: str | None, db: int) -> str:
    """`redis[s]://[user:password@]host:port/db` reaching the published port (node 0's
    address with topology sentinel: the first primary; tools ask Sentinel for the current)."""
    if settings.topology == "sentinel":
        first = topology.nodes(settings)[0]
        return _url(settings, first.host.address, first.port, username, password, db)
    return _url(settings, settings.url_host, settings.host_port, username, password, db)


def network_url(settings: Settings, password: str | None, db: int) -> str:
    """The URL a service on the Docker network uses: the container by name, Redis's own port."""
    return _url(settings, settings.name, redis_conf.CONTAINER_PORT, settings.app_username, password, db)


def credentials(url: str) -> tuple[str | None, str | None]:
    """The user name and password of a URL `_url` built (unquoted), each None when absent."""
    parts = urlsplit(url)
    return (
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
    )


def _url(settings: Settings, host: str, port: int, username: str | None, password: str | None, db: int) -> str:
    scheme = "rediss" if settings.tls_enabled else "redis"
    auth = f"{quote(username or 'default', safe='')}:{quote(password, safe='')}@" if password else ""
    return f"{scheme}://{auth}{host}:{port}/{db}"


def host_tls(deployed: dict[str, object]) -> dict[str, object]:
    """redis-py's TLS arguments for a tool on the Docker host reaching a deployment through
    its published port; `deployed`: its `settings` output (aliases), so that the files are
    those the running server uses. It trusts the stack's own CA (ca.crt) and shows the
    server's certificate as its client one, as the image's healthcheck does: whatever
    tlsAuthClients says, which changes while Redis runs (the online settings change it with
    these). The name is not checked: the certificate names the container, and the host
    reaches it as 127.0.0.1."""
    if not deployed.get("tlsEnabled"):
        return {}
    folder = str(deployed.get("tlsCertsDir"))
    return {
        "ssl_ca_certs": f"{folder}/ca.crt",
        "ssl_check_hostname": False,
        "ssl_certfile": f"{folder}/tls.crt",
        "ssl_keyfile": f"{folder}/tls.key",
    }


def sentinel_url(settings: Settings, password: str | None, db: int) -> str:
    """Kombu's form for a topology sentinel instance: `sentinel://[user:password@]host:port/db`
    for each Sentinel, joined by `;`; the master name goes in the transport options. The
    password is the primary's; Sentinels take theirs from `sentinel_kwargs`."""
    auth = f"{quote(settings.app_username, safe='')}:{quote(password, safe='')}@" if password else ""
    return ";".join(f"sentinel://{auth}{s.endpoint}/{db}" for s in topology.sentinels(settings))


# Seconds between Kombu's checks of its long-lived connections (its default is 25): a
# worker whose BRPOP connection went half-open (the primary's host cut off) drops it once a
# reply is this much overdue, asks the Sentinels again and consumes from the new primary.
BROKER_HEALTH_CHECK = 5
# Seconds a broker command (publish, ack) may wait on a silent primary before it fails and
# the client reconnects through the Sentinels.
BROKER_SOCKET_TIMEOUT = 5


def transport_options(settings: Settings, password: str | None) -> dict[str, object]:
    """Celery's broker/result transport options for a topology sentinel instance."""
    # Timeouts: a Sentinel on a silent host must not hold the client for TCP's own timeout;
    # no retry (redis-py retries a connection 10 times by default): the next Sentinel answers.
    kwargs: dict[str, object] = {
        "username": settings.app_username,
        "socket_timeout": 1,
        "socket_connect_timeout": 1,
        "retry": None,
    }
    if password:
        kwargs["password"] = password
    return {
        "master_name": topology.master_name(settings),
        "sentinel_kwargs": kwargs,
        "health_check_interval": BROKER_HEALTH_CHECK,
        "socket_timeout": BROKER_SOCKET_TIMEOUT,
        "socket_connect_timeout": 1,
        "socket_keepalive": True,
    }


def _url_of(settings: Settings, password: str | None, db: int) -> str:
    if settings.topology == "sentinel":
        return sentinel_url(settings, password, db)
    return network_url(settings, password, db)


def _urls(serving: dict[Use, Settings], passwords: dict[Use, str | None]) -> dict[str, str]:
    cache, durable = serving["cache"], serving["durable"]
    urls = {
        "REDIS_CACHE_URL": _url_of(cache, passwords["cache"], cache.cache_db),
        "REDIS_URL": _url_of(durable, passwords["durable"], durable.cache_db),
        "REDIS_SESSION_URL": _url_of(durable, passwords["durable"], durable.cache_db),
        "REDIS_STREAM_URL": _url_of(durable, passwords["durable"], durable.cache_db),
        "CELERY_BROKER_URL": _url_of(durable, passwords["durable"], durable.celery_broker_db),
        "CELERY_RESULT_BACKEND": _url_of(durable, passwords["durable"], durable.celery_result_db),
    }
    if durable.topology == "sentinel":
        options = json.dumps(transport_options(durable, passwords["durable"]))
        urls["CELERY_BROKER_TRANSPORT_OPTIONS"] = options
        urls["CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS"] = options
    return urls


def _sentinel_env(prefix: str, settings: Settings) -> dict[str, str]:
    if settings.topology != "sentinel":
        return {}
    return {
        f"{prefix}SENTINELS": ",".join(s.endpoint for s in topology.sentinels(settings)),
        f"{prefix}MASTER_NAME": topology.master_name(settings),
    }


def consumer_env(serving: dict[Use, Settings]) -> dict[str, str]:
    """What a service on the network puts in its .env, the same keys in both layouts.

    The URLs here carry no password; `consumer_secrets` has them with it.
    """
    cache, durable = serving["cache"], serving["durable"]
    socket = (
        # Mount the volume at the same path and run with group 1000 to use it.
        {"REDIS_SOCKET_PATH": redis_conf.SOCKET_PATH, "REDIS_SOCKET_VOLUME": durable.socket_volume_name}
        if durable.unix_socket
        else {}
    )
    return {
        **socket,
        **_urls(serving, {"cache": None, "durable": None}),
        **_sentinel_env("REDIS_", durable),
        **_sentinel_env("REDIS_CACHE_", cache),
        "REDIS_TOPOLOGY": durable.topology,
        "REDIS_HOST": durable.name,
        "REDIS_PORT": str(redis_conf.CONTAINER_PORT),
        "REDIS_CACHE_HOST": cache.name,
        "REDIS_CACHE_PORT": str(redis_conf.CONTAINER_PORT),
        "REDIS_USERNAME": durable.app_username,
        "REDIS_DB": str(durable.cache_db),
        "REDIS_SSL": "true" if durable.tls_enabled else "false",
        "REDIS_CACHE_TTL": str(cache.cache_ttl),
        "REDIS_SESSION_TTL": str(durable.session_ttl),
        "REDIS_STREAM_MAXLEN": str(durable.stream_maxlen),
        # Durable writes (bizosaas_redis_patterns.Durability.from_env): replicas that confirm each.
        "REDIS_WAIT_REPLICAS": str(durable.durable_write_replicas),
        "REDIS_WAIT_TIMEOUT_MS": str(durable.durable_write_timeout_ms),
        "CELERY_BROKER_DB": str(durable.celery_broker_db),
        "CELERY_RESULT_DB": str(durable.celery_result_db),
        "REDIS_MAX_CONNECTIONS": str(durable.maxclients),
    }


def consumer_secrets(serving: dict[Use, Settings], passwords: dict[Use, str | None]) -> dict[str, str]:
    """The URLs of `consumer_env` with the application password, and the passwords."""
    secrets = _urls(serving, passwords)
    for key, password in (("REDIS_PASSWORD", passwords["durable"]), ("REDIS_CACHE_PASSWORD", passwords["cache"])):
        if password is not None:
            secrets[key] = password
    return secrets
