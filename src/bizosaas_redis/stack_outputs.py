"""Every stack output the program exports, with what it holds: the program exports only
these names, and the outputs reference page is rendered from them."""

from __future__ import annotations

from bizosaas_redis.settings.keys import DURABLE_PREFIX

# Exported once per instance; a split stack's durable instance has each with this prefix.
INSTANCE: dict[str, str] = {
    "role": "`shared` (layout single), `cache` or `durable`.",
    "topology": "`standalone` or `sentinel`.",
    "master_name": "Topology sentinel: the name Sentinels monitor the primary by.",
    "sentinels": "Topology sentinel: each Sentinel's `host:port`.",
    "nodes": "Topology sentinel: each node's `host:port`, node 0 first.",
    "node_containers": "Topology sentinel: each node's container name.",
    "container_name": "The Redis container (node 0's with topology sentinel).",
    "host": "Where tools on the host reach Redis (the published address).",
    "port": "The published port (node 0's with topology sentinel).",
    "network": "The Docker network consumers reach Redis on.",
    "volume": "The named volume at `/data` (kept on destroy with retainDataOnDestroy).",
    "socket_volume": "With unixSocket: the in-memory volume holding the socket, for consumers to mount.",
    "socket_path": "With unixSocket: the socket's path inside that volume's mount.",
    "app_username": "The application user (`default`, so password-only clients work).",
    "admin_username": "The operators' user, with every command.",
    "redis_conf": "The rendered `redis.conf` (its users are users.acl's): previews show a configuration change.",
    "redis_url": "Secret. The application user's URL through the published port.",
    "redis_admin_url": "Secret. The admin user's URL through the published port.",
    "redis_password": "Secret. The application user's password (when authentication is on).",
    "exporter_password": "Secret. With exporterEnabled: the password of the exporter's ACL user.",
    "replication_password": "Secret. Topology sentinel: the password replicas link to the primary with.",
    "sentinel_password": "Secret. Topology sentinel: the password Sentinels authenticate to nodes and peers with.",
    "exporter_url": "With exporterEnabled: the exporter's `/metrics` URL (node 0's with topology sentinel).",
    "exporter_urls": "Topology sentinel with exporterEnabled: every node's exporter URL.",
    "sentinel_exporter_urls": "Topology sentinel with exporterEnabled: every Sentinel's exporter URL.",
}
# Exported once per stack.
STACK: dict[str, str] = {
    "layout": "`single` or `split`.",
    "cache_db": "The database caches use.",
    "celery_broker_db": "The Celery broker's database.",
    "celery_result_db": "The Celery result backend's database.",
    "settings": "Every setting of the stack as validated (no secret): what was deployed.",
    "consumer_env": "What services put in their `.env`, without passwords: URLs by use, hosts, ports, TTLs.",
    "consumer_secrets": "Secret. The same URLs with the application password, and the passwords.",
}
SECRET = frozenset(
    {
        "redis_url",
        "redis_admin_url",
        "redis_password",
        "exporter_password",
        "replication_password",
        "sentinel_password",
        "consumer_secrets",
    }
)


def documented(name: str) -> bool:
    """Whether `name`, as exported (a durable instance's with its prefix), is one of the above."""
    return name in STACK or name.removeprefix(f"{DURABLE_PREFIX}_") in INSTANCE
