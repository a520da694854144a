"""The stack settings: one typed, validated model that everything else derives from.

A stack's settings live in the `redis:` namespace of `Pulumi.<stack>.yaml`. The Pulumi
program reads them through `pulumi.Config`; the operations and tests read the same file
with `load_stack_file`, with no Pulumi engine. One module per concern declares its
settings, each with its default and a one-line description (docs/reference/configuration.md's
table), and validates them:

| Module | Settings |
|---|---|
| `identity` | environment, container name, flavour, image |
| `layout` | single or split, the durable instance's block |
| `high_availability` | topology sentinel: replicas, Sentinels, Docker hosts, durable writes |
| `network` | published port, Docker network, unix socket, volume |
| `memory` | maxmemory, eviction, the container's memory limit, clients |
| `databases` | the databases and TTLs consumers use |
| `persistence` | RDB and AOF |
| `security` | authentication, ACL users, denied commands, TLS |
| `lifecycle` | restarts, stopping, healthcheck, logs, labels |
| `monitoring` | alert thresholds, the exporter |

`model` composes them into `Settings`; `loading` validates a stack's values into it;
`stack_files` finds the project and reads its stack files; `values` holds the value types.
"""

from bizosaas_redis.settings.high_availability import DEFAULT_HOST, MAX_REPLICAS, MAX_SENTINELS, TOPOLOGIES
from bizosaas_redis.settings.keys import (
    DURABLE_PREFIX,
    INSTANCE_SECRET_KEYS,
    INTERNAL_FIELDS,
    NAMESPACE,
    NEXT_KEYS,
    PREVIOUS_KEYS,
    SECRET_KEYS,
)
from bizosaas_redis.settings.layout import DURABLE_PORT_OFFSET, LAYOUTS, SHARED_SETTINGS, Role
from bizosaas_redis.settings.loading import NoDurableInstance, SettingsError, build_settings, instance, instances
from bizosaas_redis.settings.memory import (
    MAXMEMORY_POLICIES,
    MIN_MEMORY_HEADROOM,
    MIN_MEMORY_OVERHEAD,
    minimum_memory_limit,
)
from bizosaas_redis.settings.model import Settings, online_acl_settings, online_directives, online_sentinel_options
from bizosaas_redis.settings.persistence import DEFAULT_SAVE
from bizosaas_redis.settings.security import DEFAULT_DENIED_COMMANDS, ESSENTIAL_COMMANDS, RESERVED_USERS
from bizosaas_redis.settings.stack_files import (
    PROJECT_DIR_VARIABLE,
    PROJECT_FILE,
    NoProject,
    available_stacks,
    find_project_dir,
    load_stack_file,
    load_yaml,
    project_dir,
    read_stack_config,
    stack_file,
)
from bizosaas_redis.settings.values import DockerHost, SaveRule, format_size, parse_size

__all__ = [
    "DEFAULT_DENIED_COMMANDS",
    "DEFAULT_HOST",
    "DEFAULT_SAVE",
    "DURABLE_PORT_OFFSET",
    "DURABLE_PREFIX",
    "ESSENTIAL_COMMANDS",
    "INSTANCE_SECRET_KEYS",
    "INTERNAL_FIELDS",
    "LAYOUTS",
    "MAXMEMORY_POLICIES",
    "MAX_REPLICAS",
    "MAX_SENTINELS",
    "MIN_MEMORY_HEADROOM",
    "MIN_MEMORY_OVERHEAD",
    "NAMESPACE",
    "NEXT_KEYS",
    "PREVIOUS_KEYS",
    "PROJECT_DIR_VARIABLE",
    "PROJECT_FILE",
    "RESERVED_USERS",
    "SECRET_KEYS",
    "SHARED_SETTINGS",
    "TOPOLOGIES",
    "DockerHost",
    "NoDurableInstance",
    "NoProject",
    "Role",
    "SaveRule",
    "Settings",
    "SettingsError",
    "available_stacks",
    "build_settings",
    "find_project_dir",
    "format_size",
    "instance",
    "instances",
    "load_stack_file",
    "load_yaml",
    "minimum_memory_limit",
    "online_acl_settings",
    "online_directives",
    "online_sentinel_options",
    "parse_size",
    "project_dir",
    "read_stack_config",
    "stack_file",
]
