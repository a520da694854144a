"""The stack config's keys that are not settings fields: the namespace, the secrets."""

from __future__ import annotations

NAMESPACE = "redis"
# Secret keys are read with get_secret by the program; the model never holds them.
# The durable instance of a split stack has its own (`durablePassword`, ...).
# `replicationPassword` and `sentinelPassword` only with topology sentinel.
# A password rotation's previous passwords, still accepted beside the current ones until
# `bizosaas-redis rotate finish` (password key -> its previous one's key).
PREVIOUS_KEYS = {
    "password": "previousPassword",
    "adminPassword": "previousAdminPassword",
    "exporterPassword": "previousExporterPassword",
    "replicationPassword": "previousReplicationPassword",
    "sentinelPassword": "previousSentinelPassword",
}
# The topology's own passwords (their clients are the stack's nodes and Sentinels) rotate
# in three steps: `rotate start` sets the next one, accepted beside the current one while
# every client keeps the current one; `rotate switch` makes it current (the clients move)
# and keeps the old one as previous; `rotate finish` removes that.
NEXT_KEYS = {
    "replicationPassword": "nextReplicationPassword",
    "sentinelPassword": "nextSentinelPassword",
}
INSTANCE_SECRET_KEYS = (
    "password",
    "adminPassword",
    "exporterPassword",
    "replicationPassword",
    "sentinelPassword",
    *PREVIOUS_KEYS.values(),
    *NEXT_KEYS.values(),
)
DURABLE_PREFIX = "durable"
SECRET_KEYS = (
    *INSTANCE_SECRET_KEYS,
    *(DURABLE_PREFIX + key[0].upper() + key[1:] for key in INSTANCE_SECRET_KEYS),
)
# Settings fields that are not config keys (set by build_settings).
INTERNAL_FIELDS = ("stack", "role")
