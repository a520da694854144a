"""Names and numbers shared by the program, the operations tooling and the tests.

The policy pack keeps its own copies to stay self-contained (CrossGuard loads it alone);
tests/unit/test_constants.py pins them equal to these.
"""

from __future__ import annotations

# The official image's `redis` user and group. Its entrypoint starts Redis directly when
# the container already runs as this user, so the container needs no capability at all.
REDIS_UID = 999
REDIS_GID = 1000
REDIS_USER = f"{REDIS_UID}:{REDIS_GID}"

# Container labels: who a container belongs to, and the Redis settings in the clear
# (the uploaded redis.conf is a secret) for the policy pack, reviewers and operators.
LABEL_SERVICE = "com.bizosaas.service"
LABEL_STACK = "com.bizosaas.stack"
LABEL_ENVIRONMENT = "com.bizosaas.environment"
# What the instance holds (shared, cache, durable): the policy pack checks it against the
# eviction policy; tools tell a split stack's two instances apart by it.
LABEL_ROLE = "com.bizosaas.role"
LABEL_PREFIX = "com.bizosaas.redis."
# A files container (components/files.py) names the container it writes files for.
LABEL_FILES_FOR = "com.bizosaas.files-for"
SERVICE_REDIS = "redis"
SERVICE_EXPORTER = "redis-exporter"
SERVICE_SENTINEL = "redis-sentinel"

# Resource and function type tokens of the providers the program uses.
CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
GET_NETWORK = "docker:index/getNetwork:getNetwork"
RANDOM_PASSWORD = "random:index/randomPassword:RandomPassword"
DOCKER_PROVIDER = "pulumi:providers:docker"
# The engine's type of the online settings' dynamic resource (components/online.py).
ONLINE_SETTINGS = "pulumi-python:dynamic/bizosaas:RedisOnlineSettings"

# Databases and TTLs the consumers use unless a stack says otherwise.
DEFAULT_CACHE_DB = 0
DEFAULT_BROKER_DB = 1
DEFAULT_RESULT_DB = 2
DEFAULT_CACHE_TTL = 3600
DEFAULT_SESSION_TTL = 86400
DEFAULT_STREAM_MAXLEN = 10_000

# redis_exporter: the image's own user, and the port it serves /metrics on.
EXPORTER_UID = 59000
EXPORTER_PORT = 9121
# The `com.bizosaas.redis.auth` label: a password required, none, or none yet while a
# password `rotate start` published reaches the consumers (turning authentication on).
AUTH_ON, AUTH_OFF, AUTH_TURNING_ON = "on", "off", "turning-on"
