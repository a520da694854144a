"""Run the Pulumi program under Pulumi's mock runtime and capture what it declares (unit tests).

Fast feedback without an engine: every registered resource with its inputs (camelCase
keys, numbers as floats, secrets wrapped, as the engine would receive them), its resource
options, and every stack output with its secrecy. What deploys is proven by the
integration tests, through `pulumi up`.
"""

from __future__ import annotations

import json
import secrets
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import settings as runtime_settings
from pulumi.runtime.config import set_all_config
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs
from pulumi.runtime.sync_await import _sync_await

from bizosaas_redis.constants import (
    CONTAINER,
    GET_NETWORK,
    LABEL_FILES_FOR,
    LABEL_ROLE,
    LABEL_SERVICE,
    ONLINE_SETTINGS,
    RANDOM_PASSWORD,
    REMOTE_IMAGE,
)
from bizosaas_redis.redis_conf import USERS_PATH
from bizosaas_redis.settings import NAMESPACE, SECRET_KEYS, read_stack_config, stack_file
from bizosaas_redis_pulumi import program
from bizosaas_redis_pulumi.components.files import NAME_SUFFIX, ONLINE_SUFFIX

PROJECT = "bizosaas-redis"
# How pulumi's RPC layer marks a secret value.
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG_KEY) == SECRET_SIG


def label_dict(labels: list[dict[str, str]] | None) -> dict[str, str]:
    """A resource's `labels` input ([{label, value}, …]) as a mapping."""
    return {item["label"]: item["value"] for item in labels or []}


def unwrap(value: Any) -> Any:
    """Strip secret wrappers anywhere in a captured value."""
    if is_secret(value):
        return unwrap(value["value"])
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


@dataclass
class Resource:
    type: str
    name: str
    inputs: dict[str, Any]
    # Resource options the engine would see (deleteBeforeReplace, replaceOnChanges, ...).
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def plain(self) -> dict[str, Any]:
        return unwrap(self.inputs)


@dataclass
class Output:
    value: Any
    secret: bool


@dataclass
class Capture:
    stack: str
    resources: list[Resource] = field(default_factory=list)
    outputs: dict[str, Output] = field(default_factory=dict)
    invokes: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # (type, name) -> resource options, of components too (which mocks never see created).
    registered: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.type == typ]

    def container(self, service: str = "redis", durable: bool = False) -> Resource:
        """The Container labelled com.bizosaas.service=<service> (redis, redis-exporter) of
        the durable instance, or else of the other one (cache or shared)."""
        return self._labelled(CONTAINER, service, durable)

    def online_settings(self, durable: bool = False) -> Resource:
        """The RedisOnlineSettings of the server `container(durable=durable)` is."""
        return self._labelled(ONLINE_SETTINGS, "redis", durable)

    def _labelled(self, typ: str, service: str, durable: bool) -> Resource:
        for resource in self.of_type(typ):
            labels = label_dict(resource.plain.get("labels"))
            if labels.get(LABEL_SERVICE) == service and (labels.get(LABEL_ROLE) == "durable") == durable:
                return resource
        raise AssertionError(f"no {typ} for service {service}" + (" (durable)" if durable else ""))

    def files_of(self, container: Resource, suffix: str = NAME_SUFFIX) -> Resource:
        """The files container (components/files.py) that writes `container`'s files, or
        (suffix ONLINE_SUFFIX) its online.conf."""
        name = container.plain["name"]
        for resource in self.of_type(CONTAINER):
            labels = label_dict(resource.plain.get("labels"))
            if labels.get(LABEL_FILES_FOR) == name and resource.plain["name"] == name + suffix:
                return resource
        raise AssertionError(f"no files container {name}{suffix}")

    def users_of(self, container: Resource) -> str:
        """The users.acl its online files container writes for `container`."""
        uploads = self.files_of(container, ONLINE_SUFFIX).plain["uploads"]
        return str(next(upload["content"] for upload in uploads if upload["file"] == USERS_PATH))

    def one(self, typ: str) -> Resource:
        found = self.of_type(typ)
        if len(found) != 1:
            raise AssertionError(f"expected one {typ}, found {len(found)}")
        return found[0]


class _Mocks(pulumi.runtime.Mocks):
    """Answers like the Docker and random providers would, and records every call."""

    def __init__(self, capture: Capture, passwords: dict[str, str]):
        self.capture = capture
        self.passwords = passwords

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.capture.resources.append(Resource(args.typ, args.name, dict(args.inputs)))
        state = dict(args.inputs)
        if args.typ == RANDOM_PASSWORD:
            if args.name not in self.passwords:
                alphabet = string.ascii_letters + string.digits
                self.passwords[args.name] = "".join(
                    secrets.choice(alphabet) for _ in range(int(args.inputs.get("length", 32)))
                )
            state["result"] = self.passwords[args.name]
        if args.typ == REMOTE_IMAGE:
            state["imageId"] = args.inputs["name"]
        return f"{args.name}-id", state

    def call(self, args: MockCallArgs) -> tuple[dict, list[tuple[str, str]] | None]:
        self.capture.invokes.append((args.token, dict(args.args)))
        if args.token == GET_NETWORK:
            return {"id": args.args["name"], "name": args.args["name"], "driver": "bridge"}, []
        return {}, []


class _HookRegistry:
    """The mock runtime has no callback server, where resource hooks (the sentinel
    handover) register; under mocks a hook is only declared, never called."""

    def register_resource_hook(self, hook: pulumi.ResourceHook) -> None:
        return None


class _Monitor(MockMonitor):
    """Also records the resource options of each registration, which mocks do not see."""

    def __init__(self, mocks: _Mocks):
        super().__init__(mocks)
        self.options: dict[tuple[str, str], dict[str, Any]] = {}

    def RegisterResource(self, request: Any) -> Any:
        self.options[(request.type, request.name)] = {
            "deleteBeforeReplace": request.deleteBeforeReplace,
            "replaceOnChanges": list(request.replaceOnChanges),
            "replaceWith": list(request.replace_with),
            "retainOnDelete": request.retainOnDelete,
            "protect": request.protect,
            "parent": request.parent,
            "dependencies": list(request.dependencies),
            "additionalSecretOutputs": list(request.additionalSecretOutputs),
            # "<provider urn>::<id>": which Docker host the resource lives on; "" the default one.
            "provider": request.provider,
        }
        return super().RegisterResource(request)


def config_map(values: dict[str, Any]) -> dict[str, str]:
    """Stack-file values as the engine hands them over: strings, objects as JSON."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict) and "secure" in value:
            continue  # ciphertext only the Pulumi CLI can open: as if unset
        if isinstance(value, str):
            out[f"{NAMESPACE}:{key}"] = value
        else:
            out[f"{NAMESPACE}:{key}"] = json.dumps(value)
    return out


def run_program(
    stack: str,
    values: dict[str, Any] | None = None,
    passwords: dict[str, str] | None = None,
    secrets_config: dict[str, str] | None = None,
    preview: bool = False,
    root: Path | None = None,
) -> Capture:
    """Run infra's program for `stack` (its stack file, or `values` instead) under mocks.

    `passwords` seeds RandomPassword results by resource name and receives generated ones.
    `secrets_config` sets secret config keys (e.g. {"password": "..."}).
    """
    if values is None:
        values = read_stack_config(stack_file(stack, root))
    config = config_map(values)
    secret_keys = []
    for key, value in (secrets_config or {}).items():
        if key not in SECRET_KEYS:
            raise ValueError(f"{key} is not a secret setting ({', '.join(SECRET_KEYS)})")
        config[f"{NAMESPACE}:{key}"] = value
        secret_keys.append(f"{NAMESPACE}:{key}")

    capture = Capture(stack=stack)
    set_all_config(config, secret_keys)
    runtime_settings.ROOT.set(None)  # a fresh stack per run, even in one process
    monitor = _Monitor(_Mocks(capture, passwords if passwords is not None else {}))
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=preview, monitor=monitor)
    runtime_settings.SETTINGS.callbacks = _HookRegistry()
    root_stack = runtime_settings.get_root_resource()

    async def _run() -> None:
        program.main()
        for name, value in root_stack.outputs.items():  # type: ignore[union-attr]
            out = pulumi.Output.from_input(value)
            capture.outputs[name] = Output(await out.future(), await out.is_secret())

    from pulumi.runtime.stack import run_pulumi_func

    _sync_await(run_pulumi_func(_run))
    for resource in capture.resources:
        resource.options = monitor.options.get((resource.type, resource.name), {})
    capture.registered = monitor.options
    return capture
