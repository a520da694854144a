"""CrossGuard rules for the Redis service's Docker resources.

Importable without the Pulumi engine (only policies/__main__.py builds the PolicyPack,
which starts a server). Each rule looks only at the resource types it names; a value not
known during preview raises pulumi_policy's UnknownValueError on access, which the engine
reports as "can't run policy during preview" and re-checks at `pulumi up`.

Redis settings are read from the container's `com.bizosaas.redis.*` labels, which the
program derives from the same settings model as redis.conf (the uploaded file itself is
a secret and unknown in previews of new stacks); the settings Redis applies while it runs
(maxmemory, its policy, `save`) from the `directives` of the server's RedisOnlineSettings,
which carries the same ownership labels, and its labels for what its users hold (auth,
denied commands) and the memory limit: as container labels they would replace the
container on every change.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

# Copies of bizosaas_redis.constants: the pack is loaded alone by the engine
# (tests/unit/test_constants.py pins them equal).
CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
ONLINE_SETTINGS = "pulumi-python:dynamic/bizosaas:RedisOnlineSettings"
LABEL = "com.bizosaas.redis."
LABEL_SERVICE = "com.bizosaas.service"
LABEL_ENVIRONMENT = "com.bizosaas.environment"
LABEL_ROLE = "com.bizosaas.role"
REDIS_USER = "999:1000"
AUTH_ON, AUTH_TURNING_ON = "on", "turning-on"
MIN_HEADROOM = 2.0
MIN_OVERHEAD = 64 * 1024**2
# Denied to applications in every environment, and in production.
DENIED_EVERYWHERE = {"FLUSHALL", "FLUSHDB"}
DENIED_IN_PRODUCTION = DENIED_EVERYWHERE | {"KEYS", "CONFIG", "DEBUG", "SHUTDOWN", "MONITOR"}
WILDCARD_ADDRESSES = {"", "0.0.0.0", "::", "[::]"}
_EXACT_TAG = re.compile(r":v?\d+\.\d+\.\d+[\w.-]*$")
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_SECRET_NAME = re.compile(r"(PASSW(OR)?D|SECRET|TOKEN|CREDENTIAL|PRIVATE_?KEY|(^|_)AUTH$)", re.IGNORECASE)
_CLI_PASSWORD = re.compile(r"(?:^|\s)(?:-a|--pass|--requirepass|--masterauth)\s+(\S+)")
_URL_PASSWORD = re.compile(r"rediss?://[^:/@\s]*:([^@\s]+)@")
# First release of each minor line with the fixes for the known critical CVEs, per the
# vendors' advisories: CVE-2025-49844 ("RediShell", Lua use-after-free, remote code
# execution) with CVE-2025-46817/46818/46819, after CVE-2025-21605 (7.4.3) and
# CVE-2024-46981/51741 (7.4.2). A line not listed gets no fix any more: move on.
KNOWN_CVES = "CVE-2025-49844 (RediShell) and CVE-2025-46817/46818/46819"
PATCHED: dict[str, dict[tuple[int, int], tuple[int, int, int]]] = {
    "redis": {(6, 2): (6, 2, 20), (7, 2): (7, 2, 11), (7, 4): (7, 4, 6), (8, 0): (8, 0, 4), (8, 2): (8, 2, 2)},
    "valkey": {(8, 1): (8, 1, 4)},
}
_IMAGE_VERSION = re.compile(r"(?:^|/)(redis|valkey)(?::v?(\d+)\.(\d+)\.(\d+))")
# The healthcheck user's password is public by design: it may only PING.
PUBLIC_PASSWORDS = {"healthcheck"}


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    remediation: str
    resource_types: frozenset[str]
    check: Callable[[ResourceValidationArgs], list[str]]
    redis_only: bool = True  # only the Redis container, not sidecars
    # About the container's running process: not checked on a container created with
    # start=false, as the files containers are (they only carry files onto a volume and
    # never run, which is why their root may be writable: README, "Files containers").
    runtime: bool = False


def labels(props: Mapping[str, Any]) -> dict[str, str]:
    return {item["label"]: item["value"] for item in props.get("labels") or []}


def directives(props: Mapping[str, Any]) -> dict[str, str]:
    """The online settings' directive -> value (RedisOnlineSettings)."""
    return dict(props.get("directives") or {})


def environment(args: ResourceValidationArgs) -> str:
    """The resource's environment label; else the stack name in the URN."""
    if args.resource_type in (CONTAINER, ONLINE_SETTINGS):
        env = labels(args.props).get(LABEL_ENVIRONMENT)
        if env:
            return env
    stack = args.urn.split("::")[0].removeprefix("urn:pulumi:") if args.urn else ""
    return "production" if stack.startswith("prod") else stack


def is_production(args: ResourceValidationArgs) -> bool:
    return environment(args) == "production"


def is_redis(props: Mapping[str, Any]) -> bool:
    return labels(props).get(LABEL_SERVICE) == "redis"


# --- checks: each returns the problems found, empty when compliant -------------------


def _image_pinned(args: ResourceValidationArgs) -> list[str]:
    image = args.props.get("name") if args.resource_type == REMOTE_IMAGE else None
    if image is None:
        return []
    if _DIGEST.search(image) or _EXACT_TAG.search(image):
        return []
    return [f"image {image!r} floats (its content changes under the same tag)"]


def _image_patched(args: ResourceValidationArgs) -> list[str]:
    """An exact version is checked against the advisories; a floating tag is
    redis-image-pinned's concern (it cannot be judged here)."""
    image = args.props.get("name") if args.resource_type == REMOTE_IMAGE else None
    found = _IMAGE_VERSION.search(image or "")
    if found is None:
        return []
    flavour, version = found.group(1), tuple(int(v) for v in found.groups()[1:])
    fixed = PATCHED[flavour]
    line = version[:2]
    if line in fixed:
        if version < fixed[line]:
            minimum = ".".join(map(str, fixed[line]))
            return [f"{image} lacks the fixes for {KNOWN_CVES}: use {flavour} {minimum} or later"]
        return []
    newer = sorted(v for v in fixed.values() if v[:2] > line)
    if not newer:
        return []  # a line newer than the advisories
    upgrade = ".".join(map(str, newer[0]))
    return [f"{image}: the {line[0]}.{line[1]} line gets no fix for {KNOWN_CVES}: use {flavour} {upgrade} or later"]


def _auth_required(args: ResourceValidationArgs) -> list[str]:
    # "turning-on": the consumers have the password and `rotate finish` requires it; a
    # stack adopted without one gets there without refusing a client. Never in production.
    value = labels(args.props).get(f"{LABEL}auth")
    if value == AUTH_ON or (value == AUTH_TURNING_ON and not is_production(args)):
        return []
    return [f"authentication is {value or 'not declared'}"]


def _port_not_public(args: ResourceValidationArgs) -> list[str]:
    if not is_production(args):
        return []
    problems = []
    for port in args.props.get("ports") or []:
        ip = port.get("ip") or "0.0.0.0"  # the provider's default
        if ip in WILDCARD_ADDRESSES:
            problems.append(f"port {int(port.get('external', 0))} is published on all interfaces ({ip})")
    return problems


def _maxmemory_below_limit(args: ResourceValidationArgs) -> list[str]:
    """On the online settings: maxmemory, beside the limit of the container they run in
    (its memory, in MB, as a label: the container holds no maxmemory)."""
    maxmemory = int(directives(args.props).get("maxmemory") or 0)
    memory_mb = labels(args.props).get(f"{LABEL}memory-limit-mb")
    if maxmemory <= 0:
        return ["maxmemory is not set: Redis would grow until the kernel kills it"]
    if not memory_mb:
        return []  # memory-limit-set reports this, on the container
    limit = int(memory_mb) * 1024**2
    if limit < max(MIN_HEADROOM * maxmemory, maxmemory + MIN_OVERHEAD):
        return [
            f"memory limit {int(memory_mb)} MB is below {MIN_HEADROOM} × maxmemory or maxmemory + 64 MB "
            f"({maxmemory} bytes): a snapshot under writes can be OOM-killed"
        ]
    return []


def _eviction_policy_set(args: ResourceValidationArgs) -> list[str]:
    return [] if directives(args.props).get("maxmemory-policy") else ["maxmemory-policy is not set explicitly"]


def _healthcheck_authenticates(args: ResourceValidationArgs) -> list[str]:
    check = args.props.get("healthcheck")
    if not check or not check.get("tests"):
        return ["no healthcheck"]
    test = " ".join(check["tests"])
    if "PONG" not in test:
        return [f"healthcheck {test!r} passes on NOAUTH (redis-cli ping exits 0): it must test for PONG"]
    return []


def _restart_policy_set(args: ResourceValidationArgs) -> list[str]:
    restart = args.props.get("restart") or "no"
    return [] if restart in ("unless-stopped", "always", "on-failure") else [f"restart policy is {restart!r}"]


def _persistence_configured(args: ResourceValidationArgs) -> list[str]:
    """The container: its volume; its online settings: AOF (a label, a restart setting)
    or RDB rules (`save`, applied online) in production."""
    if args.resource_type == ONLINE_SETTINGS:
        aof = labels(args.props).get(f"{LABEL}appendonly") == "yes"
        if is_production(args) and not aof and not directives(args.props).get("save"):
            return ["neither AOF nor RDB snapshots are on"]
        return []
    volumes = [v for v in args.props.get("volumes") or [] if v.get("containerPath") == "/data" and v.get("volumeName")]
    mounts = [m for m in args.props.get("mounts") or [] if m.get("target") == "/data" and m.get("type") == "volume"]
    return [] if volumes or mounts else ["/data is not a named volume: data dies with the container"]


def _durable_data_not_evicted(args: ResourceValidationArgs) -> list[str]:
    """An instance holding the broker, streams and sessions (role shared or durable) must
    not evict: volatile-* policies evict sessions and blacklist entries too (they have TTLs)."""
    role, policy = labels(args.props).get(LABEL_ROLE), directives(args.props).get("maxmemory-policy")
    if role in ("shared", "durable") and policy and policy != "noeviction":
        return [
            f"this instance (role {role}) holds the Celery broker and results, streams, sessions and the JWT "
            f"blacklist under maxmemory-policy {policy}: when memory fills, eviction drops queued tasks, stream "
            "entries and sessions, and un-revokes tokens"
        ]
    return []


def _no_privileged(args: ResourceValidationArgs) -> list[str]:
    return ["privileged mode is on"] if args.props.get("privileged") else []


def _capabilities_dropped(args: ResourceValidationArgs) -> list[str]:
    caps = args.props.get("capabilities") or {}
    problems = []
    if "ALL" not in [c.upper() for c in caps.get("drops") or []]:
        problems.append("capabilities are not all dropped")
    if caps.get("adds"):
        problems.append(f"capabilities added: {', '.join(caps['adds'])}")
    return problems


def _no_new_privileges(args: ResourceValidationArgs) -> list[str]:
    opts = [o.replace("=", ":") for o in args.props.get("securityOpts") or []]
    return [] if {"no-new-privileges", "no-new-privileges:true"} & set(opts) else ["no-new-privileges is not set"]


def _non_root_user(args: ResourceValidationArgs) -> list[str]:
    user = (args.props.get("user") or "").split(":")[0]
    return [f"runs as {user or 'the image default (root)'}"] if user in ("", "0", "root") else []


def _read_only_root(args: ResourceValidationArgs) -> list[str]:
    return [] if args.props.get("readOnly") else ["the root filesystem is writable"]


def _memory_limit_set(args: ResourceValidationArgs) -> list[str]:
    return [] if args.props.get("memory") else ["no memory limit"]


def _log_rotation(args: ResourceValidationArgs) -> list[str]:
    driver = args.props.get("logDriver") or "json-file"
    if driver not in ("json-file", "local"):
        return []  # shipped elsewhere (journald, syslog, fluentd...): rotation is not Docker's
    opts = args.props.get("logOpts") or {}
    return [] if opts.get("max-size") else [f"{driver} logs grow without bound (no max-size)"]


def _plaintext_secrets(args: ResourceValidationArgs) -> list[str]:
    props = args.props
    problems = []
    for env in props.get("envs") or []:
        name, _, value = env.partition("=")
        if _SECRET_NAME.search(name) and value and not name.endswith("_FILE"):
            problems.append(f"environment variable {name} holds a secret in plain text")
    places = {
        "command": " ".join(props.get("command") or []),
        "entrypoint": " ".join(props.get("entrypoints") or []),
        "healthcheck": " ".join((props.get("healthcheck") or {}).get("tests") or []),
    }
    for place, text in places.items():
        for match in [*_CLI_PASSWORD.findall(text), *_URL_PASSWORD.findall(text)]:
            if match not in PUBLIC_PASSWORDS:
                problems.append(f"the {place} carries a password")
    for key, value in labels(props).items():
        if _SECRET_NAME.search(key) or _URL_PASSWORD.search(value):
            problems.append(f"label {key} holds a secret")
    return problems


def _dangerous_commands_denied(args: ResourceValidationArgs) -> list[str]:
    denied = set(filter(None, labels(args.props).get(f"{LABEL}denied-commands", "").split(",")))
    required = DENIED_IN_PRODUCTION if is_production(args) else DENIED_EVERYWHERE
    missing = sorted(required - denied)
    return [f"applications may run {', '.join(missing)}"] if missing else []


_C = frozenset({CONTAINER})
_ONLINE = frozenset({ONLINE_SETTINGS})
RULES: list[Rule] = [
    Rule(
        "redis-image-pinned",
        "The Redis image is pinned to an exact version or digest.",
        "set redis:image to an exact version such as redis:7.4.6-alpine, or to name@sha256:<digest>",
        frozenset({REMOTE_IMAGE}),
        _image_pinned,
        redis_only=False,
    ),
    Rule(
        "redis-image-patched",
        "An exact Redis or Valkey version carries the fixes for the known critical CVEs.",
        "set redis:image to a patched release, e.g. redis:7.4.6-alpine or later on 7.4, 8.0.4+, 8.2.2+",
        frozenset({REMOTE_IMAGE}),
        _image_patched,
        redis_only=False,
    ),
    Rule(
        "redis-auth-required",
        "Redis requires a password (outside production: or is turning it on, between `rotate start` and `finish`).",
        "set redis:authEnabled to true (and a secret redis:password, or let one be generated)",
        _ONLINE,
        _auth_required,
    ),
    Rule(
        "redis-port-not-public",
        "In production the Redis port is not published on all interfaces.",
        "set redis:publishAddress to 127.0.0.1 (consumers use dokploy-network) or a private address",
        _C,
        _port_not_public,
    ),
    Rule(
        "redis-maxmemory-below-limit",
        "maxmemory is set and the container limit leaves headroom above it.",
        "set redis:maxmemory, and redis:memoryLimit to at least 2 × maxmemory and maxmemory + 64mb (or the default)",
        _ONLINE,
        _maxmemory_below_limit,
    ),
    Rule(
        "redis-eviction-policy-set",
        "The eviction policy is set explicitly.",
        "set redis:maxmemoryPolicy (allkeys-lru for a cache)",
        _ONLINE,
        _eviction_policy_set,
    ),
    Rule(
        "redis-healthcheck-authenticates",
        "A healthcheck exists and fails unless Redis answers PONG.",
        "keep RedisServer's healthcheck (redis-cli ... ping | grep -q PONG); tune redis:healthcheck*",
        _C,
        _healthcheck_authenticates,
    ),
    Rule(
        "redis-restart-policy-set",
        "The container restarts after a crash or reboot.",
        "set redis:restartPolicy to unless-stopped",
        _C,
        _restart_policy_set,
        redis_only=False,
        runtime=True,
    ),
    Rule(
        "redis-persistence-configured",
        "/data is a named volume; production keeps AOF or RDB on.",
        "set redis:volumeName, and redis:appendonly true or redis:save rules in production",
        _C | _ONLINE,
        _persistence_configured,
    ),
    Rule(
        "redis-no-privileged",
        "The container is not privileged.",
        "remove privileged from the container (bizosaas_redis_pulumi/components/hardening.py)",
        _C,
        _no_privileged,
        redis_only=False,
    ),
    Rule(
        "redis-capabilities-dropped",
        "All Linux capabilities are dropped and none added.",
        "keep capabilities.drops=[ALL] in RedisServer (bizosaas_redis_pulumi/components/hardening.py)",
        _C,
        _capabilities_dropped,
        redis_only=False,
    ),
    Rule(
        "redis-no-new-privileges",
        "no-new-privileges is set.",
        "keep securityOpts=[no-new-privileges:true] in RedisServer (bizosaas_redis_pulumi/components/hardening.py)",
        _C,
        _no_new_privileges,
        redis_only=False,
    ),
    Rule(
        "redis-non-root-user",
        "The container runs as a non-root user.",
        f"keep user {REDIS_USER} (the image's redis user) in RedisServer "
        "(bizosaas_redis_pulumi/components/redis_server.py)",
        _C,
        _non_root_user,
        redis_only=False,
        runtime=True,
    ),
    Rule(
        "redis-read-only-root",
        "The root filesystem is read-only.",
        "keep readOnly=true in RedisServer; /data and /tmp are the writable mounts",
        _C,
        _read_only_root,
        redis_only=False,
        runtime=True,
    ),
    Rule(
        "redis-memory-limit-set",
        "The container has a memory limit.",
        "set redis:memoryLimit (default 2 × redis:maxmemory)",
        _C,
        _memory_limit_set,
        redis_only=False,
        runtime=True,
    ),
    Rule(
        "redis-log-rotation",
        "Container logs rotate.",
        "set redis:logMaxSize and redis:logMaxFiles",
        _C,
        _log_rotation,
        redis_only=False,
        runtime=True,
    ),
    Rule(
        "redis-no-plaintext-secrets",
        "No secret in plain text in environment, command, labels or healthcheck.",
        "pass secrets through secret config (redis:password) and files, never env, args or labels",
        _C,
        _plaintext_secrets,
        redis_only=False,
    ),
    Rule(
        "redis-dangerous-commands-denied",
        "Applications cannot run dangerous commands.",
        "add to redis:deniedCommands: FLUSHALL, FLUSHDB (and in production KEYS, CONFIG, DEBUG, SHUTDOWN, MONITOR)",
        _ONLINE,
        _dangerous_commands_denied,
    ),
    Rule(
        "redis-durable-data-not-evicted",
        "Queues, streams, sessions and the JWT blacklist live on an instance that does not evict.",
        "set redis:layout to split (a durable instance with noeviction beside the cache), or "
        "redis:maxmemoryPolicy to noeviction",
        _ONLINE,
        _durable_data_not_evicted,
    ),
]


# --- stack rules: over every resource of the stack at once -----------------------------


@dataclass(frozen=True)
class StackRule:
    name: str
    description: str
    remediation: str
    check: Callable[[list[PolicyResource]], list[tuple[str, str]]]  # -> (problem, urn)


def docker_host(resource: PolicyResource) -> str:
    """The Docker host a container runs on: its provider's `host`, else the provider
    itself (the default one: the engine's own Docker)."""
    provider = resource.provider
    if provider is None:
        return "the default Docker host"
    return str((provider.props or {}).get("host") or provider.name or provider.urn)


def _quorum_survives_one_host(resources: list[PolicyResource]) -> list[tuple[str, str]]:
    """For each sentinel topology (one per role): with any one Docker host down, a majority
    of its Sentinels, and at least the quorum, still run, and so does a node."""
    groups: dict[str, dict[str, list[PolicyResource]]] = {}
    for resource in resources:
        if resource.resource_type != CONTAINER or resource.props.get("start") is False:
            continue
        found = labels(resource.props)
        if found.get(f"{LABEL}topology") != "sentinel":
            continue
        kind = "sentinel" if f"{LABEL}sentinel" in found else "node"
        groups.setdefault(found.get(LABEL_ROLE, ""), {"sentinel": [], "node": []})[kind].append(resource)
    problems = []
    for group in groups.values():
        sentinels, nodes = group["sentinel"], group["node"]
        if not sentinels or not nodes:
            continue
        quorum = max(int(labels(s.props).get(f"{LABEL}quorum") or 0) for s in sentinels)
        needed = max(len(sentinels) // 2 + 1, quorum)
        for host in sorted({docker_host(r) for r in sentinels + nodes}):
            left = sum(docker_host(r) != host for r in sentinels)
            nodes_left = sum(docker_host(r) != host for r in nodes)
            if left < needed or not nodes_left:
                problems.append(
                    (
                        f"with Docker host {host} down, {left} of {len(sentinels)} Sentinels and {nodes_left} of "
                        f"{len(nodes)} nodes remain: a failover needs {needed} Sentinels (a majority, and the "
                        "quorum) and a node to promote",
                        sentinels[0].urn,
                    )
                )
    return problems


STACK_RULES = [
    StackRule(
        "redis-sentinel-survives-a-host",
        "With topology sentinel, any one Docker host down leaves a majority of Sentinels (and the quorum) and a node.",
        "place nodes and Sentinels on at least three Docker hosts (redis:dockerHosts, redis:placement, "
        "redis:sentinelPlacement), no host with a majority of the Sentinels",
        _quorum_survives_one_host,
    )
]
RULES_BY_NAME = {rule.name: rule for rule in RULES}
RULE_NAMES = [*RULES_BY_NAME, *(rule.name for rule in STACK_RULES)]


def validator(rule: Rule) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in rule.resource_types:
            return
        if rule.redis_only and not is_redis(args.props):
            return
        if rule.runtime and args.props.get("start") is False:
            return
        for problem in rule.check(args):
            report_violation(f"{problem}. To fix: {rule.remediation}.", args.urn)

    return validate


LEVELS = ("advisory", "mandatory", "disabled")


def effective_level(pack_config: Mapping[str, Any], rule_name: str, default: str = "mandatory") -> str:
    """The enforcement level the engine applies, given a pack config (policies/config/*.json)."""
    for key in (rule_name, "all"):
        value = pack_config.get(key)
        if isinstance(value, dict):
            value = value.get("enforcementLevel")
        if value:
            return str(value)
    return default


def stack_validator(rule: StackRule) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for problem, urn in rule.check(list(args.resources)):
            report_violation(f"{problem}. To fix: {rule.remediation}.", urn)

    return validate


def policies(
    default_level: EnforcementLevel = EnforcementLevel.MANDATORY,
) -> list[ResourceValidationPolicy | StackValidationPolicy]:
    """The rules as CrossGuard policies (mandatory unless the pack config says otherwise)."""
    found: list[ResourceValidationPolicy | StackValidationPolicy] = [
        ResourceValidationPolicy(
            name=rule.name,
            description=rule.description,
            validate=validator(rule),
            enforcement_level=default_level,
        )
        for rule in RULES
    ]
    for stack_rule in STACK_RULES:
        found.append(
            StackValidationPolicy(
                name=stack_rule.name,
                description=stack_rule.description,
                validate=stack_validator(stack_rule),
                enforcement_level=default_level,
            )
        )
    return found
