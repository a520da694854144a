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
}
INSTANCE_SECRET_KEYS = (
    "password",
    "adminPassword",
    "exporterPassword",
    "replicationPassword",
    "sentinelPassword",
    *PREVIOUS_KEYS.values(),
)
DURABLE_PREFIX = "durable"
SECRET_KEYS = (
    *INSTANCE_SECRET_KEYS,
    *(DURABLE_PREFIX + key[0].upper() + key[1:] for key in INSTANCE_SECRET_KEYS),
)
# Settings fields that are not config keys (set by build_settings).
INTERNAL_FIELDS = ("stack", "role")
