"""Deploy what the Pulumi program declares to a local Docker engine, without Pulumi.

For development and CI, where no Pulumi engine runs: the program runs under Pulumi's
mock runtime (capture.py), and every resource it registers is applied with its exact
inputs through the Docker SDK. Production deploys use `pulumi up`.

State (generated passwords and the applied container spec) lives in
`.local-deploy/<stack>.json`, mode 0600, like a Pulumi state file: the passwords in it are
encrypted with PULUMI_CONFIG_PASSPHRASE. Never commit it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import posixpath
import socket
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.types import LogConfig, Mount

from bizosaas_redis import handover, topology
from bizosaas_redis.components import exporter, redis_service
from bizosaas_redis.components.sentinel import COMPONENT_TYPE as SENTINEL_COMPONENT
from bizosaas_redis.connection import credentials, instance_names
from bizosaas_redis.constants import (
    CONTAINER,
    DOCKER_PROVIDER,
    GET_NETWORK,
    LABEL_PREFIX,
    LABEL_ROLE,
    NETWORK,
    RANDOM_PASSWORD,
    REMOTE_IMAGE,
    VOLUME,
)
from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings import (
    PROJECT_ROOT,
    Role,
    Settings,
    build_settings,
    instances,
    read_stack_config,
    stack_file,
)

from . import capture, layout_move, offline_image, preflight, secretbox
from .docker_engine import ensure_engine


def state_dir() -> Path:
    """Where local deploy state lives; BIZOSAAS_LOCAL_STATE moves it (tests do)."""
    return Path(os.environ.get("BIZOSAAS_LOCAL_STATE", PROJECT_ROOT / ".local-deploy"))


# Resources that exist only inside the program or the Pulumi engine.
NOT_DOCKER = {
    RANDOM_PASSWORD,
    DOCKER_PROVIDER,
    redis_service.COMPONENT_TYPE,
    exporter.COMPONENT_TYPE,
    SENTINEL_COMPONENT,
}
NANOS = 1_000_000_000


class LocalApplyError(BizosaasRedisError):
    pass


@dataclass
class Applied:
    """What the last `up` applied to one container."""

    spec_sha256: str
    # Its destroy_grace_seconds: what its stop may take on replace or down. As pulumi-docker
    # does, 0 (SIGKILL at once) when the program did not set it.
    destroy_grace_seconds: int = 0


@dataclass
class State:
    stack: str
    passwords: dict[str, str] = field(default_factory=dict)
    # Container name -> what was applied to it.
    containers: dict[str, Applied] = field(default_factory=dict)
    created_network: str | None = None
    # The setting overrides of the last `up` (--image, --port, --set), so that outputs,
    # status and down describe what runs.
    overrides: dict[str, Any] = field(default_factory=dict)

    def grace(self, name: str) -> int:
        applied = self.containers.get(name)
        return applied.destroy_grace_seconds if applied else 0

    @property
    def path(self) -> Path:
        return state_dir() / f"{self.stack}.json"

    @staticmethod
    def exists(stack: str) -> bool:
        return (state_dir() / f"{stack}.json").exists()

    @classmethod
    def load(cls, stack: str) -> State:
        """The stack's state; its passwords are decrypted with PULUMI_CONFIG_PASSPHRASE."""
        path = state_dir() / f"{stack}.json"
        if not path.exists():
            return cls(stack=stack)
        data = json.loads(path.read_text())
        box = data.pop("passwords", None)
        passwords = {}
        if box:
            try:
                passwords = json.loads(secretbox.open_(box, secretbox.passphrase()))
            except secretbox.SecretBoxError as exc:
                raise LocalApplyError(f"{path}: {exc}") from None
        containers = {name: Applied(**applied) for name, applied in data.pop("containers", {}).items()}
        # State of one container, as written before layouts: its container is replaced once.
        data.pop("spec_sha256", None)
        data.pop("destroy_grace_seconds", None)
        return cls(stack=stack, passwords=passwords, containers=containers, **data)

    def save(self) -> None:
        """Written with mode 0600; the passwords only encrypted, as in Pulumi's state."""
        state_dir().mkdir(parents=True, exist_ok=True)
        data = {k: v for k, v in self.__dict__.items() if k not in ("stack", "passwords", "containers")}
        data["containers"] = {name: applied.__dict__ for name, applied in self.containers.items()}
        try:
            data["passwords"] = secretbox.seal(json.dumps(self.passwords), secretbox.passphrase())
        except secretbox.SecretBoxError as exc:
            raise LocalApplyError(str(exc)) from None
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2)

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


def stack_values(stack: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stack file's settings with local overrides (camelCase keys) applied, validated."""
    values = {**read_stack_config(stack_file(stack)), **(overrides or {})}
    source = stack_file(stack).name + (" with local overrides" if overrides else "")
    build_settings(values, stack, source=source)  # fail early, every problem at once
    return values


def plan(stack: str, overrides: dict[str, Any] | None = None, state: State | None = None) -> capture.Capture:
    """Run the program for the stack under mocks, with passwords from the local state."""
    state = state or State.load(stack)
    return capture.run_program(stack, values=stack_values(stack, overrides), passwords=state.passwords)


# --- translating the provider's inputs into Docker API calls -------------------------


def _duration_ns(text: str) -> int:
    units = {"ms": NANOS // 1000, "s": NANOS, "m": 60 * NANOS, "h": 3600 * NANOS}
    for suffix in ("ms", "s", "m", "h"):
        if text.endswith(suffix):
            return int(float(text[: -len(suffix)]) * units[suffix])
    raise LocalApplyError(f"healthcheck duration {text!r} has no unit (s, m, h)")


def _upload_tar(upload: dict[str, Any]) -> tuple[str, bytes]:
    data = upload["content"].encode()
    info = tarfile.TarInfo(posixpath.basename(upload["file"]))
    info.size = len(data)
    info.mtime = int(time.time())
    info.uid = int(upload.get("owner") or 0)
    info.gid = int(upload.get("group") or 0)
    info.mode = int(upload.get("permissions") or ("0755" if upload.get("executable") else "0644"), 8)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.addfile(info, io.BytesIO(data))
    return posixpath.dirname(upload["file"]), buffer.getvalue()


@dataclass
class ContainerSpec:
    """Docker API arguments for the container, built from the provider's inputs."""

    create: dict[str, Any]
    host_config: dict[str, Any]
    networks: list[dict[str, Any]]
    uploads: list[tuple[str, bytes]]
    wait: bool
    wait_timeout: float
    must_run: bool
    destroy_grace_seconds: int


def container_spec(inputs: dict[str, Any]) -> ContainerSpec:
    """Map every input the program sets; an input with no mapping is an error."""
    i = capture.unwrap(inputs)
    create: dict[str, Any] = {}
    host: dict[str, Any] = {}
    handlers = {
        "name": lambda v: create.update(name=v),
        "image": lambda v: create.update(image=v),
        "command": lambda v: create.update(command=v),
        "entrypoints": lambda v: create.update(entrypoint=v),
        "envs": lambda v: create.update(environment=v),
        "user": lambda v: create.update(user=v),
        "networkMode": lambda v: host.update(network_mode=v),
        "stopSignal": lambda v: create.update(stop_signal=v),
        "stopTimeout": lambda v: create.update(stop_timeout=int(v)),
        # Used when the container is replaced or removed (see State.destroy_grace_seconds).
        "destroyGraceSeconds": lambda v: None,
        "labels": lambda v: create.update(labels=capture.label_dict(v)),
        "healthcheck": lambda v: create.update(
            healthcheck={
                "test": v["tests"],
                "interval": _duration_ns(v.get("interval", "30s")),
                "timeout": _duration_ns(v.get("timeout", "30s")),
                "retries": int(v.get("retries", 3)),
                "start_period": _duration_ns(v.get("startPeriod", "0s")),
            }
        ),
        "ports": lambda v: host.update(
            port_bindings={
                f"{int(p['internal'])}/{p.get('protocol', 'tcp')}": (
                    p.get("ip", "0.0.0.0"),
                    int(p["external"]),
                )
                for p in v
            }
        ),
        "volumes": lambda v: host.setdefault("mounts", []).extend(
            Mount(
                target=x["containerPath"],
                source=x["volumeName"],
                type="volume",
                read_only=bool(x.get("readOnly", False)),
            )
            for x in v
        ),
        "mounts": lambda v: host.setdefault("mounts", []).extend(
            Mount(
                target=x["target"],
                source=x.get("source"),
                type=x["type"],
                read_only=bool(x.get("readOnly", False)),
            )
            for x in v
        ),
        "tmpfs": lambda v: host.update(tmpfs=dict(v)),
        "readOnly": lambda v: host.update(read_only=bool(v)),
        "capabilities": lambda v: host.update(cap_drop=v.get("drops") or None, cap_add=v.get("adds") or None),
        "securityOpts": lambda v: host.update(security_opt=list(v)),
        "memory": lambda v: host.update(mem_limit=f"{int(v)}m"),
        "memorySwap": lambda v: host.update(memswap_limit=f"{int(v)}m"),
        "restart": lambda v: host.update(restart_policy={"Name": "" if v == "no" else v}),
        "logDriver": lambda v: host.setdefault("log", {}).update(type=v),
        "logOpts": lambda v: host.setdefault("log", {}).update(config=dict(v)),
        # Handled below, after creation.
        "networksAdvanced": lambda v: None,
        "uploads": lambda v: None,
        "wait": lambda v: None,
        "waitTimeout": lambda v: None,
        "mustRun": lambda v: None,
    }
    unknown = sorted(set(i) - set(handlers))
    if unknown:
        raise LocalApplyError(
            f"the program sets container input(s) the local deployer cannot apply: {', '.join(unknown)}; "
            "teach src/bizosaas_redis_ops/local_apply.py to apply them"
        )
    for key, value in i.items():
        handlers[key](value)
    if "log" in host:
        log = host.pop("log")
        host["log_config"] = LogConfig(type=log.get("type", "json-file"), config=log.get("config", {}))
    return ContainerSpec(
        create=create,
        host_config=host,
        networks=list(i.get("networksAdvanced", [])),
        uploads=[_upload_tar(u) for u in i.get("uploads", [])],
        wait=bool(i.get("wait", False)),
        wait_timeout=float(i.get("waitTimeout", 60)),
        must_run=bool(i.get("mustRun", True)),
        destroy_grace_seconds=int(i.get("destroyGraceSeconds", 0)),
    )


def spec_digest(inputs: dict[str, Any], image_id: str) -> str:
    canonical = json.dumps({"inputs": capture.unwrap(inputs), "image": image_id}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- applying --------------------------------------------------------------------


class Engines:
    """The Docker engine of each resource: the default one, or the endpoint (`host`) of
    the docker.Provider the resource was registered with (topology sentinel's hosts)."""

    def __init__(self, cap: capture.Capture, default: docker.DockerClient | None = None):
        self._urls = {r.name: r.plain.get("host") for r in cap.of_type(DOCKER_PROVIDER)}
        self._default = default
        self._clients: dict[str | None, docker.DockerClient] = {}

    def url(self, resource: capture.Resource) -> str | None:
        ref = str(resource.options.get("provider") or "")
        if not ref:
            return None
        # "<urn>::<id>"; a URN ends in "::<name>".
        name = ref.rsplit("::", 1)[0].rsplit("::", 1)[-1]
        return self._urls.get(name)

    def of(self, resource: capture.Resource) -> docker.DockerClient:
        return self.at(self.url(resource))

    def at(self, url: str | None) -> docker.DockerClient:
        if url not in self._clients:
            if url is None:
                self._clients[url] = self._default or ensure_engine()
            else:
                client = docker.DockerClient(base_url=url, timeout=60, use_ssh_client=url.startswith("ssh://"))
                try:
                    client.ping()
                except docker.errors.DockerException as exc:
                    raise LocalApplyError(f"redis:dockerHosts: Docker at {url} does not answer ({exc})") from None
                self._clients[url] = client
        return self._clients[url]


def _ensure_image(client: docker.DockerClient, name: str) -> str:
    try:
        return str(client.images.get(name).id)
    except docker.errors.ImageNotFound:
        pass
    try:
        return str(client.images.pull(name).id)
    except docker.errors.APIError as exc:
        raise LocalApplyError(
            f"image {name} is not on this engine and cannot be pulled ({exc.explanation}); "
            "with no registry, build the stand-in with bizosaas-redis offline-image and pass "
            f"--image {offline_image.TAG}"
        ) from None


def _admin_passwords(cap: capture.Capture) -> dict[str, str]:
    """Each instance's admin password (cache, durable), from the program's secret outputs."""
    found: dict[str, str] = {}
    roles: tuple[Role, ...] = ("cache", "durable")
    for which in roles:
        out = cap.outputs.get(instance_names(which).output_prefix + "redis_admin_url")
        password = credentials(str(out.value))[1] if out is not None else None
        if password:
            found[which] = password
    return found


def _ensure_network(client: docker.DockerClient | None, cap: capture.Capture, state: State) -> None:
    if client is None:
        return
    for token, args in cap.invokes:
        if token == GET_NETWORK:
            try:
                client.networks.get(args["name"])
            except docker.errors.NotFound:
                raise LocalApplyError(
                    f"network {args['name']} is external (networkExternal: true) and does not exist; "
                    f"create it (Dokploy does: docker network create {args['name']})"
                ) from None
    for res in cap.of_type(NETWORK):
        i = res.plain
        unknown = set(i) - {"name", "driver", "labels"}
        if unknown:
            raise LocalApplyError(f"network input(s) the local deployer cannot apply: {', '.join(sorted(unknown))}")
        if not client.networks.list(names=[i["name"]]):
            client.networks.create(
                i["name"],
                driver=i.get("driver", "bridge"),
                labels=capture.label_dict(i.get("labels")),
            )
        state.created_network = i["name"]


def _ensure_volumes(engines: Engines, cap: capture.Capture) -> None:
    for res in cap.of_type(VOLUME):
        client = engines.of(res)
        i = res.plain
        unknown = set(i) - {"name", "labels", "driver", "driverOpts"}
        if unknown:
            raise LocalApplyError(f"volume input(s) the local deployer cannot apply: {', '.join(sorted(unknown))}")
        try:
            client.volumes.get(i["name"])
        except docker.errors.NotFound:
            client.volumes.create(
                i["name"],
                driver=i.get("driver", "local"),
                driver_opts=i.get("driverOpts"),
                labels=capture.label_dict(i.get("labels")),
            )


def _get_container(client: docker.DockerClient, name: str):
    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        return None


def wait_healthy(client: docker.DockerClient, name: str, timeout: float, poll: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    status = "unknown"
    while time.monotonic() < deadline:
        attrs = client.api.inspect_container(name)
        state = attrs["State"]
        status = state.get("Health", {}).get("Status", "none")
        if status == "healthy":
            return
        if not state["Running"] and state["Status"] in ("exited", "dead"):
            break
        time.sleep(poll)
    attrs = client.api.inspect_container(name)
    probes = attrs["State"].get("Health", {}).get("Log", [])
    last = probes[-1]["Output"].strip() if probes else "no probe ran"
    logs = client.api.logs(name, tail=15).decode(errors="replace")
    raise LocalApplyError(
        f"container {name} is not healthy after {timeout:.0f}s (status {status}, "
        f"state {attrs['State']['Status']}); last probe: {last}\n--- container log ---\n{logs}"
    )


def _published(bindings: dict[str, Any]) -> set[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    for value in bindings.values():
        for address, port in value if isinstance(value, list) else [value]:
            found.add((address or "0.0.0.0", int(port)))
    return found


def _check_ports_free(spec: ContainerSpec, existing: Any) -> None:
    """Each host port the new container publishes is free, or held by the container it replaces."""
    held: set[int] = set()
    if existing is not None:
        for bindings in (existing.attrs["HostConfig"].get("PortBindings") or {}).values():
            held |= {int(b["HostPort"]) for b in bindings or [] if b.get("HostPort")}
    for address, port in _published(spec.host_config.get("port_bindings", {})):
        if port in held:
            continue
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, port))
            except OSError as exc:
                raise LocalApplyError(
                    f"redis:hostPort = {port}: {address}:{port} is taken ({exc.strerror}); "
                    "choose a free port (--port) or stop what holds it; nothing was changed"
                ) from None


def _create_container(client: docker.DockerClient, spec: ContainerSpec, image_id: str) -> str:
    api = client.api
    networking = None
    if spec.networks:
        first = spec.networks[0]
        endpoints: Any = {first["name"]: api.create_endpoint_config(aliases=first.get("aliases") or None)}
        networking = api.create_networking_config(endpoints)
    create = {**spec.create, "image": image_id}
    container = api.create_container(
        **create, host_config=api.create_host_config(**spec.host_config), networking_config=networking
    )
    for extra in spec.networks[1:]:
        api.connect_container_to_network(container["Id"], extra["name"], aliases=extra.get("aliases"))
    for directory, archive in spec.uploads:
        api.put_archive(container["Id"], directory, archive)
    return container["Id"]


@dataclass
class Result:
    actions: dict[str, str]  # container name -> created | replaced | unchanged | started
    capture: capture.Capture
    notes: list[str] = field(default_factory=list)  # what the change does to the data, for the user


def _running_admin_urls(state: State) -> dict[str, str]:
    """The admin URL of each instance the last `up` deployed (cache, durable), if any."""
    if not state.passwords or not state.containers:
        return {}
    found = plan(state.stack, state.overrides, state).outputs
    durable = instance_names("durable").output_prefix + "redis_admin_url"
    urls = {"cache": str(found["redis_admin_url"].value)}
    return urls | ({"durable": str(found[durable].value)} if durable in found else {})


def _data_notes(new: Settings, running: dict[str, str]) -> list[str]:
    """What the change does to the running data: maxmemory below what each instance holds,
    and services' data left on the cache when the stack switches to layout split."""
    notes = []
    for settings in instances(new):
        url = running.get("durable" if settings.role == "durable" else "cache")
        note = preflight.maxmemory_change(settings, preflight.used_memory(url)) if url else None
        notes += [note] if note else []
    if new.layout == "split" and "cache" in running and "durable" not in running:
        note = layout_move.leftover_note(running["cache"], new)
        notes += [note] if note else []
    return notes


@dataclass
class _Planned:
    """One declared container with what applying it needs."""

    spec: ContainerSpec
    image: str
    image_id: str
    digest: str
    existing: Any
    client: docker.DockerClient

    @property
    def name(self) -> str:
        return str(self.spec.create["name"])

    def unchanged(self, state: State) -> bool:
        """The container exists and is what the last `up` applied."""
        applied = state.containers.get(self.name)
        return self.existing is not None and applied is not None and applied.spec_sha256 == self.digest


def _plan_containers(engines: Engines, cap: capture.Capture, state: State) -> list[_Planned]:
    image_ids = {
        (engines.url(res), res.plain["name"]): _ensure_image(engines.of(res), res.plain["name"])
        for res in cap.of_type(REMOTE_IMAGE)
    }
    planned = []
    for declared in cap.of_type(CONTAINER):
        spec = container_spec(declared.inputs)
        client = engines.of(declared)
        # Under the mocks, a container's image input is its RemoteImage's name.
        image = str(spec.create["image"])
        image_id = image_ids[(engines.url(declared), image)]
        digest = spec_digest(declared.inputs, image_id)
        planned.append(_Planned(spec, image, image_id, digest, _get_container(client, spec.create["name"]), client))
    return planned


def _handover(settings: Settings, item: _Planned, admin_password: str) -> str | None:
    """What the node container's before-delete hook does under `pulumi up`: if the node
    about to go is the primary, Sentinel first moves the role to a replica. A note when it did."""
    if f"{LABEL_PREFIX}node" not in item.existing.labels:
        return None  # not a node of the sentinel topology (yet): nothing to hand over
    for one in instances(settings):
        for node in topology.nodes(one) if one.topology == "sentinel" else []:
            if node.container_name == item.name:
                started = time.monotonic()
                now = handover.move_primary_away(one, node, admin_password)
                if now is None:
                    return None
                return (
                    f"{item.name} was the primary: Sentinel handed the role to {now[0]}:{now[1]} "
                    f"({time.monotonic() - started:.1f} s) before it was replaced"
                )
    return None


def _apply(item: _Planned, state: State, settings: Settings, admin_passwords: dict[str, str], notes: list[str]) -> str:
    client = item.client
    existing = item.existing
    if item.unchanged(state):
        if item.spec.must_run and existing.status != "running":
            existing.start()
            return "started"
        return "unchanged"
    action = "created"
    if existing is not None:
        if existing.status == "running":
            role = existing.labels.get(LABEL_ROLE, "shared")
            password = admin_passwords.get("durable" if role == "durable" else "cache")
            note = _handover(settings, item, password) if password else None
            notes += [note] if note else []
        # Fixed name: delete before create, as the program's delete_before_replace says.
        existing.stop(timeout=state.grace(item.name))
        existing.remove()
        action = "replaced"
    client.api.start(_create_container(client, item.spec, item.image_id))
    return action


def up(stack: str, overrides: dict[str, Any] | None = None, client: docker.DockerClient | None = None) -> Result:
    """Create or update the stack's resources; idempotent. `overrides`: settings for this run."""
    new = build_settings(stack_values(stack, overrides), stack)  # bad input stops here, first
    try:
        # The state is saved after the containers change: without a passphrase it could not be.
        secretbox.passphrase()
    except secretbox.SecretBoxError as exc:
        raise LocalApplyError(str(exc)) from None
    state = State.load(stack)
    notes = _data_notes(new, _running_admin_urls(state))
    state.overrides = dict(overrides or {})
    cap = plan(stack, state.overrides, state)
    engines = Engines(cap, client)
    if any(r for r in cap.of_type(CONTAINER) if r.plain.get("name", "").endswith("-exporter")):
        raise LocalApplyError(
            "the local deployer applies the Redis containers only; redis:exporterEnabled declares "
            "redis_exporter sidecars: deploy that stack with pulumi up"
        )
    unknown = {r.type for r in cap.resources} - {NETWORK, VOLUME, CONTAINER, REMOTE_IMAGE} - NOT_DOCKER
    if unknown:
        raise LocalApplyError(f"resource type(s) the local deployer cannot apply: {', '.join(sorted(unknown))}")
    planned = _plan_containers(engines, cap, state)
    # Before anything is stopped: a new container that cannot start would leave no Redis.
    for item in planned:
        if not item.unchanged(state):
            _check_ports_free(item.spec, item.existing)
            preflight.data_format(item.existing, item.image)
    _ensure_network(engines.at(None) if cap.of_type(NETWORK) or cap.invokes else None, cap, state)
    _ensure_volumes(engines, cap)
    admin_passwords = _admin_passwords(cap)
    actions = {}
    # One at a time, in the program's order: each container is healthy before the next one
    # is touched (replicas before their primary, nodes before Sentinels).
    for item in planned:
        actions[item.name] = _apply(item, state, new, admin_passwords, notes)
        state.containers[item.name] = Applied(item.digest, item.spec.destroy_grace_seconds)
        state.save()
        if item.spec.wait:
            wait_healthy(item.client, item.name, item.spec.wait_timeout)
    return Result(actions, cap, notes)


def down(stack: str, delete_data: bool = False, client: docker.DockerClient | None = None) -> list[str]:
    """Remove the container (and the network it created); the data volume only when asked."""
    state = State.load(stack)
    cap = plan(stack, state.overrides, state)
    engines = Engines(cap, client)
    removed = []
    for declared in cap.of_type(CONTAINER):
        name = declared.plain["name"]
        existing = _get_container(engines.of(declared), name)
        if existing is not None:
            existing.stop(timeout=state.grace(name))
            existing.remove()
            removed.append(f"container {name}")
    if state.created_network:
        for net in engines.at(None).networks.list(names=[state.created_network]):
            net.reload()
            if not net.containers:
                net.remove()
                removed.append(f"network {state.created_network}")
        state.created_network = None
    # As `pulumi destroy`: volumes the program does not retain go; the data volume only when asked.
    for res in cap.of_type(VOLUME):
        if delete_data or not res.options.get("retainOnDelete"):
            try:
                engines.of(res).volumes.get(res.plain["name"]).remove()
                removed.append(f"volume {res.plain['name']}")
            except docker.errors.NotFound:
                pass
    if delete_data:
        state.delete()
    else:
        state.containers = {}
        state.save()
    return removed


def containers_of(settings: Settings) -> list[tuple[str, str | None]]:
    """An instance's containers with the Docker endpoint of each (None: the default one)."""
    if settings.topology != "sentinel":
        return [(settings.name, None)]
    placed = [*topology.nodes(settings), *topology.sentinels(settings)]
    return [(one.container_name, one.host.url) for one in placed]


def status(stack: str, client: docker.DockerClient | None = None) -> list[dict[str, Any]]:
    """The state of each of the stack's Redis containers (nodes and Sentinels included)."""
    clients: dict[str | None, docker.DockerClient] = {}
    found = []
    for settings in instances(build_settings(read_stack_config(stack_file(stack)), stack)):
        for name, url in containers_of(settings):
            if url not in clients:
                clients[url] = (client or ensure_engine()) if url is None else docker.DockerClient(base_url=url)
            row: dict[str, Any] = {"stack": stack, "role": settings.role, "container": name}
            container = _get_container(clients[url], name)
            if container is None:
                found.append({**row, "state": "absent"})
                continue
            attrs = container.attrs
            found.append(
                {
                    **row,
                    "state": attrs["State"]["Status"],
                    "health": attrs["State"].get("Health", {}).get("Status", "none"),
                    "image": attrs["Config"]["Image"],
                    "ports": attrs["NetworkSettings"]["Ports"],
                    "started_at": attrs["State"]["StartedAt"],
                }
            )
    return found


def outputs(stack: str, show_secrets: bool = False) -> dict[str, Any]:
    """The stack outputs of the local deploy; secrets masked unless asked for."""
    state = State.load(stack)
    if not state.passwords:
        raise LocalApplyError(f"stack {stack} has no local deploy state; run: bizosaas-redis local up --stack {stack}")
    cap = plan(stack, state.overrides, state)
    result = {}
    for key, out in cap.outputs.items():
        result[key] = out.value if (show_secrets or not out.secret) else "[secret]"
    return result
