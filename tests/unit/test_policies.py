"""The policy pack's rules over what the real program declares for each stack."""

from __future__ import annotations

import json
import py_compile
from collections.abc import Iterable
from typing import Any

import pytest
from pulumi_policy import (
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

import capture
from bizosaas_redis.settings import available_stacks, read_stack_config, stack_file
from bizosaas_redis_ops.docs import policy_config
from conftest import ROOT
from redis_policies import rules

FIXTURES = ROOT / "tests" / "fixtures"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # how the engine marks a value unknown in preview


def violations(cap: capture.Capture, pack_config: dict | None = None) -> list[tuple[str, str, str]]:
    """(rule, level, message) for every violation, as the engine would see them."""
    found = []
    for resource in cap.resources:
        urn = f"urn:pulumi:{cap.stack}::bizosaas-redis::{resource.type}::{resource.name}"
        props = unknown_checking_proxy(deserialize_properties(resource.inputs))
        for rule in rules.RULES:
            messages = run_rule(rule, resource.type, props, urn)
            level = rules.effective_level(pack_config or {}, rule.name)
            found += [(rule.name, level, m) for m in messages]
    return found


def run_rule(rule: rules.Rule, typ: str, props: Any, urn: str = "urn:pulumi:production::p::t::n") -> list[str]:
    messages: list[str] = []
    args = ResourceValidationArgs(typ, props, urn, "n", None, None)
    rules.validator(rule)(args, lambda message, urn=None: messages.append(message))
    return messages


@pytest.fixture(scope="module")
def captures() -> dict[str, capture.Capture]:
    return {stack: capture.run_program(stack) for stack in available_stacks()}


def test_there_are_at_least_twelve_rules_each_documented():
    assert len(rules.RULES) >= 12
    assert len(rules.RULES_BY_NAME) == len(rules.RULES)
    for rule in rules.RULES:
        assert rule.name.startswith("redis-") and rule.description and rule.remediation


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_staging_and_production_have_no_mandatory_violation(captures, stack):
    found = violations(captures[stack], policy_config(stack))
    assert [v for v in found if v[1] == "mandatory"] == []


def test_production_has_no_violation_at_all(captures):
    assert violations(captures["production"], policy_config("production")) == []


def test_dev_carries_only_advisory_findings(captures):
    found = violations(captures["dev"], policy_config("dev"))
    assert {v[0] for v in found} == {
        "redis-image-pinned",
        "redis-auth-required",
        "redis-dangerous-commands-denied",
        "redis-durable-data-not-evicted",
    }
    assert {v[1] for v in found} == {"advisory"}


def test_staging_floating_image_is_advisory(captures):
    found = violations(captures["staging"], policy_config("staging"))
    # As the service runs today: one instance under allkeys-lru holds queues and sessions too.
    assert [(v[0], v[1]) for v in found] == [
        ("redis-image-pinned", "advisory"),
        ("redis-durable-data-not-evicted", "advisory"),
    ]


def test_pack_configs_name_only_real_rules_and_levels():
    for path in (ROOT / "policies" / "config").glob("*.json"):
        config = json.loads(path.read_text())
        for key, value in config.items():
            assert key == "all" or key in rules.RULE_NAMES, f"{path.name}: {key}"
            assert (value["enforcementLevel"] if isinstance(value, dict) else value) in rules.LEVELS


def _production(values_change: dict[str, Any]) -> capture.Capture:
    values = {**read_stack_config(stack_file("production")), **values_change}
    return capture.run_program("production", values=values)


# One setting of a real stack changed -> exactly one rule fires, naming the setting.
SETTING_CASES = [
    ({"image": "redis:7-alpine"}, "redis-image-pinned", "redis:image"),
    ({"image": "redis:latest"}, "redis-image-pinned", "redis:image"),
    ({"image": "redis:7.4.1-alpine"}, "redis-image-patched", "redis:image"),
    ({"publishAddress": "0.0.0.0"}, "redis-port-not-public", "redis:publishAddress"),
    ({"restartPolicy": "no"}, "redis-restart-policy-set", "redis:restartPolicy"),
    ({"deniedCommands": ["FLUSHALL", "FLUSHDB"]}, "redis-dangerous-commands-denied", "redis:deniedCommands"),
    ({"layout": "single", "durable": {}}, "redis-durable-data-not-evicted", "redis:layout"),
]


@pytest.mark.parametrize(("change", "rule", "setting"), SETTING_CASES, ids=[c[1] + str(c[0]) for c in SETTING_CASES])
def test_changing_one_setting_fires_exactly_its_rule(change, rule, setting):
    found = violations(_production(change))
    assert {v[0] for v in found} == {rule}, found
    assert all(setting in v[2] for v in found)


def _container_props(cap: capture.Capture) -> dict[str, Any]:
    return deserialize_properties(cap.container().inputs)


def _set_label(props: dict, key: str, value: str | None) -> dict:
    labels = [item for item in props["labels"] if item["label"] != key]
    if value is not None:
        labels.append({"label": key, "value": value})
    return {**props, "labels": labels}


# One property of the real production container changed -> exactly that rule fires.
PROP_CASES = [
    (
        "redis-healthcheck-authenticates",
        lambda p: {**p, "healthcheck": {**p["healthcheck"], "tests": ["CMD", "redis-cli", "ping"]}},
        "redis:healthcheck",
    ),
    (
        "redis-healthcheck-authenticates",
        lambda p: {k: v for k, v in p.items() if k != "healthcheck"},
        "redis:healthcheck",
    ),
    ("redis-persistence-configured", lambda p: {**p, "volumes": []}, "redis:volumeName"),
    ("redis-no-privileged", lambda p: {**p, "privileged": True}, "privileged"),
    ("redis-capabilities-dropped", lambda p: {**p, "capabilities": {"drops": ["NET_RAW"]}}, "capabilities.drops"),
    (
        "redis-capabilities-dropped",
        lambda p: {**p, "capabilities": {"drops": ["ALL"], "adds": ["SYS_ADMIN"]}},
        "capabilities.drops",
    ),
    ("redis-no-new-privileges", lambda p: {**p, "securityOpts": []}, "securityOpts"),
    ("redis-non-root-user", lambda p: {k: v for k, v in p.items() if k != "user"}, "user 999:1000"),
    ("redis-non-root-user", lambda p: {**p, "user": "0:0"}, "user 999:1000"),
    ("redis-read-only-root", lambda p: {**p, "readOnly": False}, "readOnly"),
    (
        "redis-memory-limit-set",
        lambda p: {k: v for k, v in p.items() if k not in ("memory", "memorySwap")},
        "redis:memoryLimit",
    ),
    ("redis-log-rotation", lambda p: {**p, "logOpts": {}}, "redis:logMaxSize"),
    ("redis-no-plaintext-secrets", lambda p: {**p, "envs": ["REDIS_PASSWORD=hunter2"]}, "redis:password"),
    (
        "redis-no-plaintext-secrets",
        lambda p: {**p, "command": ["redis-server", "--requirepass", "hunter2"]},
        "redis:password",
    ),
    (
        "redis-no-plaintext-secrets",
        lambda p: {
            **p,
            "healthcheck": {**p["healthcheck"], "tests": ["CMD-SHELL", "redis-cli -a hunter2 ping | grep PONG"]},
        },
        "redis:password",
    ),
    (
        "redis-no-plaintext-secrets",
        lambda p: _set_label(p, "backup-url", "redis://default:hunter2@x:1/0"),
        "redis:password",
    ),
]


def _set_directive(props: dict, key: str, value: str | None) -> dict:
    found = {k: v for k, v in props["directives"].items() if k != key}
    return {**props, "directives": found if value is None else {**found, key: value}}


LIMIT = "com.bizosaas.redis.memory-limit-mb"
# One value of the production server's online settings changed -> exactly that rule fires.
ONLINE_CASES = [
    ("redis-auth-required", lambda p: _set_label(p, "com.bizosaas.redis.auth", "off"), "redis:authEnabled"),
    # Turning authentication on (between `rotate start` and `finish`) is never a production state.
    ("redis-auth-required", lambda p: _set_label(p, "com.bizosaas.redis.auth", "turning-on"), "redis:authEnabled"),
    (
        "redis-dangerous-commands-denied",
        lambda p: _set_label(p, "com.bizosaas.redis.denied-commands", "KEYS"),
        "redis:deniedCommands",
    ),
    ("redis-maxmemory-below-limit", lambda p: _set_label(p, LIMIT, "1536"), "redis:memoryLimit"),
    ("redis-maxmemory-below-limit", lambda p: _set_directive(p, "maxmemory", None), "redis:maxmemory"),
    ("redis-eviction-policy-set", lambda p: _set_directive(p, "maxmemory-policy", None), "redis:maxmemoryPolicy"),
    (
        "redis-persistence-configured",
        lambda p: _set_directive(_set_label(p, "com.bizosaas.redis.appendonly", "no"), "save", ""),
        "redis:appendonly",
    ),
    (
        "redis-durable-data-not-evicted",
        lambda p: _set_directive(p, "maxmemory-policy", "volatile-lru"),
        "redis:maxmemoryPolicy",
    ),
]


def _production_props(captures: dict[str, capture.Capture], typ: str) -> dict[str, Any]:
    """As the pack sees them: production's cache container, or its durable instance's
    online settings."""
    if typ == rules.CONTAINER:
        return _container_props(captures["production"])
    return deserialize_properties(captures["production"].online_settings(durable=True).inputs)


CASES = [(rules.CONTAINER, *case) for case in PROP_CASES] + [(rules.ONLINE_SETTINGS, *case) for case in ONLINE_CASES]


@pytest.mark.parametrize(("typ", "rule", "change", "setting"), CASES, ids=[f"{c[1]}-{i}" for i, c in enumerate(CASES)])
def test_changing_one_property_fires_exactly_its_rule(captures, typ, rule, change, setting):
    props = change(_production_props(captures, typ))
    fired = {r.name: run_rule(r, typ, unknown_checking_proxy(props)) for r in rules.RULES}
    assert {name for name, messages in fired.items() if messages} == {rule}
    assert all(setting in message for message in fired[rule])


def test_the_online_settings_hold_what_the_rules_read_and_the_container_does_not(captures):
    """maxmemory, the eviction policy and `save` change online: on the container they would
    be labels (a label change replaces it); the pack reads them where they are applied, with
    the container's memory limit (updated in place) beside them."""
    cap = captures["production"]
    container = cap.container(durable=True).plain
    found = capture.label_dict(container["labels"])
    online = cap.online_settings(durable=True).plain
    assert online["directives"]["maxmemory"] == str(1024**3)
    assert online["directives"]["maxmemory-policy"] == "noeviction"
    assert online["directives"]["save"] == "900 1 300 10 60 10000"
    aof = "com.bizosaas.redis.appendonly"
    assert capture.label_dict(online["labels"])[aof] == found[aof] == "yes"
    assert capture.label_dict(online["labels"])[LIMIT] == str(int(container["memory"])) == "2048"
    assert not {f"com.bizosaas.redis.{key}" for key in ("maxmemory", "maxmemory-policy", "save")} & set(found)
    assert LIMIT not in found


def test_every_rule_has_a_violating_case():
    covered = {case[1] for case in SETTING_CASES} | {case[0] for case in PROP_CASES + ONLINE_CASES}
    assert covered == set(rules.RULES_BY_NAME)


def test_the_exporter_sidecar_passes_every_rule():
    cap = _production({"exporterEnabled": True})
    # Both instances and their exporters, each with its files container, and each instance's online.conf's.
    assert len(cap.of_type(rules.CONTAINER)) == 10
    assert violations(cap, policy_config("production")) == []


def test_a_files_container_is_exempt_from_the_runtime_rules_only_while_it_never_starts():
    cap = capture.run_program("production")
    files = deserialize_properties(cap.files_of(cap.container()).inputs)
    assert files["start"] is False and not files.get("readOnly")
    assert violations(cap, policy_config("production")) == []
    started = capture.Capture(
        stack="production", resources=[capture.Resource(rules.CONTAINER, "f", {**files, "start": True})]
    )
    assert {v[0] for v in violations(started, policy_config("production"))} == {
        name for name, rule in rules.RULES_BY_NAME.items() if rule.runtime
    }


def test_unsafe_fixture_is_rejected_with_exactly_the_expected_violations():
    cap = capture.run_program("unsafe", root=FIXTURES)
    found = violations(cap, policy_config("production"))
    assert sorted({(v[0], v[1]) for v in found}) == [
        ("redis-dangerous-commands-denied", "mandatory"),
        ("redis-durable-data-not-evicted", "mandatory"),
        ("redis-image-pinned", "mandatory"),
        ("redis-persistence-configured", "mandatory"),
        ("redis-port-not-public", "mandatory"),
        ("redis-restart-policy-set", "mandatory"),
    ]
    assert len(found) == 6


def _with_one_unknown(props: dict[str, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    for key in props:
        yield key, {**props, key: UNKNOWN}
        value = props[key]
        if isinstance(value, list) and value and isinstance(value[0], dict):
            yield f"{key}[0].*", {**props, key: [{k: UNKNOWN for k in value[0]}, *value[1:]]}


@pytest.mark.parametrize("stack", available_stacks())
def test_unknown_values_never_crash_a_rule(captures, stack):
    checked = 0
    for resource in captures[stack].resources:
        props = deserialize_properties(resource.inputs)
        for key, variant in _with_one_unknown(props):
            for rule in rules.RULES:
                try:
                    run_rule(rule, resource.type, unknown_checking_proxy(variant), f"urn:pulumi:{stack}::p::t::n")
                except UnknownValueError:
                    pass  # the engine reports "can't run during preview" and checks again at `up`
                except Exception as exc:
                    pytest.fail(f"{rule.name} crashed on unknown {resource.type}.{key}: {exc!r}")
                checked += 1
    assert checked > 100


OTHER_TYPES = [
    "docker:index/volume:Volume",
    "docker:index/network:Network",
    "docker:index/remoteImage:RemoteImage",
    "docker:index/container:Container",
    "random:index/randomPassword:RandomPassword",
    "pulumi-python:dynamic/bizosaas:RedisOnlineSettings",
    "bizosaas:redis:RedisService",
    "aws:s3/bucket:Bucket",
    "kubernetes:core/v1:Pod",
]


@pytest.mark.parametrize("rule", rules.RULES, ids=lambda r: r.name)
@pytest.mark.parametrize("typ", OTHER_TYPES)
def test_rules_fire_only_on_their_resource_types(rule, typ):
    """Props that would violate every rule, under each type: only the rule's types react."""
    base = _container_props(
        _production({"image": "redis:latest", "publishAddress": "0.0.0.0", "restartPolicy": "no", "deniedCommands": []})
    )
    props = {
        **base,
        # A floating tag breaks redis-image-pinned; an exact, unpatched one redis-image-patched.
        "name": "redis:7.4.1-alpine" if rule.name == "redis-image-patched" else "redis:latest",
        "privileged": True,
        "readOnly": False,
        "envs": ["PASSWORD=x"],
        "capabilities": {},
        "securityOpts": [],
        "user": "root",
        "logOpts": {},
        "volumes": [],
    }
    props.pop("memory")
    props.pop("healthcheck")
    props["labels"] = [
        {"label": "com.bizosaas.service", "value": "redis"},
        {"label": "com.bizosaas.environment", "value": "production"},
        {"label": "com.bizosaas.role", "value": "shared"},
    ]
    # No policy breaks redis-eviction-policy-set; allkeys-lru redis-durable-data-not-evicted.
    props["directives"] = {"maxmemory-policy": "allkeys-lru"} if rule.name == "redis-durable-data-not-evicted" else {}
    fired = run_rule(rule, typ, unknown_checking_proxy(props))
    if typ in rule.resource_types:
        assert fired, f"{rule.name} should fire on {typ}"
    else:
        assert fired == []


def test_the_pack_holds_every_rule_in_order():
    assert [p.name for p in rules.policies()] == [
        "redis-image-pinned",
        "redis-image-patched",
        "redis-auth-required",
        "redis-port-not-public",
        "redis-maxmemory-below-limit",
        "redis-eviction-policy-set",
        "redis-healthcheck-authenticates",
        "redis-restart-policy-set",
        "redis-persistence-configured",
        "redis-no-privileged",
        "redis-capabilities-dropped",
        "redis-no-new-privileges",
        "redis-non-root-user",
        "redis-read-only-root",
        "redis-memory-limit-set",
        "redis-log-rotation",
        "redis-no-plaintext-secrets",
        "redis-dangerous-commands-denied",
        "redis-durable-data-not-evicted",
        "redis-sentinel-survives-a-host",
    ]
    main = ROOT / "policies" / "__main__.py"
    py_compile.compile(str(main), doraise=True)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("redis:7.4.1-alpine", "redis:7.4.1-alpine lacks the fixes for CVE-2025-49844 (RediShell) and "
         "CVE-2025-46817/46818/46819: use redis 7.4.6 or later"),
        ("redis:8.0.3", "redis:8.0.3 lacks the fixes for CVE-2025-49844 (RediShell) and CVE-2025-46817/46818/46819: "
         "use redis 8.0.4 or later"),
        ("redis:7.0.15", "redis:7.0.15: the 7.0 line gets no fix for CVE-2025-49844 (RediShell) and "
         "CVE-2025-46817/46818/46819: use redis 7.2.11 or later"),
        ("valkey/valkey:8.1.3", "valkey/valkey:8.1.3 lacks the fixes for CVE-2025-49844 (RediShell) and "
         "CVE-2025-46817/46818/46819: use valkey 8.1.4 or later"),
        ("redis:7.4.6-alpine", None),
        ("redis:8.2.2", None),
        ("valkey/valkey:8.1.4-alpine", None),
        ("docker.io/library/redis:7.4.6-alpine@sha256:" + "a" * 64, None),
        ("redis:7-alpine", None),  # floating: redis-image-pinned's concern
        ("localhost/redis-offline:7.0", None),
    ],
)  # fmt: skip
def test_image_versions_are_judged_against_the_advisories(image, message):
    rule = rules.RULES_BY_NAME["redis-image-patched"]
    found = run_rule(rule, rules.REMOTE_IMAGE, {"name": image})
    assert found == ([f"{message}. To fix: {rule.remediation}."] if message else [])


# --- the stack rule: a sentinel topology survives any one Docker host ------------------

SENTINEL_HOSTS = {
    "a": {"url": "ssh://deploy@10.0.0.11", "address": "10.0.0.11"},
    "b": {"url": "ssh://deploy@10.0.0.12", "address": "10.0.0.12"},
    "c": {"url": "ssh://deploy@10.0.0.13", "address": "10.0.0.13"},
}


def stack_violations(values: dict[str, Any]) -> list[str]:
    """The stack rules' messages over what the program declares, each container with its
    provider (its Docker host) as the engine gives it to a stack policy."""
    cap = capture.run_program(
        "production", values=values, secrets_config={"password": "app-pw", "adminPassword": "admin-pw"}
    )
    providers = {
        f"{r.name}-id": PolicyProviderResource(r.type, deserialize_properties(r.inputs), r.name, r.name)
        for r in cap.of_type("pulumi:providers:docker")
    }
    resources = [
        PolicyResource(
            r.type,
            deserialize_properties(r.inputs),
            f"urn:pulumi:production::bizosaas-redis::{r.type}::{r.name}",
            r.name,
            PolicyResourceOptions(False, [], None, [], None, []),  # type: ignore[arg-type]
            providers.get((r.options.get("provider") or "").rsplit("::", 1)[-1]),
            None,
            [],
            {},
        )
        for r in cap.resources
    ]
    messages: list[str] = []
    for rule in rules.STACK_RULES:
        args = StackValidationArgs(resources)
        rules.stack_validator(rule)(args, lambda message, urn=None: messages.append(message))
    return messages


def test_a_sentinel_topology_on_three_hosts_survives_any_one():
    assert stack_violations({"topology": "sentinel", "dockerHosts": SENTINEL_HOSTS, "environment": "production"}) == []


def test_a_host_with_a_majority_of_the_sentinels_is_refused():
    values = {"topology": "sentinel", "dockerHosts": SENTINEL_HOSTS, "sentinelPlacement": ["a", "a", "b"]}
    [message] = stack_violations(values)
    assert message.startswith(
        "with Docker host ssh://deploy@10.0.0.11 down, 1 of 3 Sentinels and 2 of 3 nodes remain: a failover "
        "needs 2 Sentinels (a majority, and the quorum) and a node to promote. To fix: place nodes and Sentinels"
    )


def test_one_host_for_everything_is_refused_and_a_standalone_stack_is_not_judged():
    one = {"topology": "sentinel", "advertisedHost": "172.17.0.1"}
    [message] = stack_violations(one)
    assert "with Docker host the default Docker host down, 0 of 3 Sentinels and 0 of 3 nodes remain" in message
    assert stack_violations({}) == []
    rule = "redis-sentinel-survives-a-host"
    levels = {stack: rules.effective_level(policy_config(stack), rule) for stack in available_stacks()}
    assert levels == {"dev": "advisory", "staging": "advisory", "production": "mandatory"}


def test_turning_authentication_on_passes_outside_production_only():
    # The staging stack after `rotate start` from no password: its consumers hold the
    # password, the server does not require it yet, and `rotate finish` will.
    values = {**read_stack_config(stack_file("staging")), "authEnabled": False}
    cap = capture.run_program("staging", values=values, secrets_config={"password": "first-Pw-1"})
    auth = rules.RULES_BY_NAME["redis-auth-required"]
    props = cap.online_settings().plain
    assert _label(props, "com.bizosaas.redis.auth") == "turning-on"
    assert run_rule(auth, rules.ONLINE_SETTINGS, unknown_checking_proxy(props)) == []
    off = capture.run_program("staging", values=values)
    assert run_rule(auth, rules.ONLINE_SETTINGS, unknown_checking_proxy(off.online_settings().plain)) != []


def _label(props: dict, key: str) -> str | None:
    return next((item["value"] for item in props["labels"] if item["label"] == key), None)
