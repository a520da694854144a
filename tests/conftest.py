"""Shared fixtures: real redis-server processes and a real Docker engine.

In CI (CI=true) a fixture that cannot start its real part fails the test; elsewhere it
skips with the reason, so a laptop without Docker can still run the unit tests.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from bizosaas_redis import redis_conf
from bizosaas_redis.settings import (
    Settings,
    available_stacks,
    build_settings,
    instances,
    load_stack_file,
    read_stack_config,
    stack_file,
)
from bizosaas_redis_ops.deploy.docker_engine import free_port
from bizosaas_redis_ops.deploy.sandbox import Project, Sandbox

ROOT = Path(__file__).resolve().parents[1]
# The testinfra checks ship in bizosaas_redis_ops.check.deployment; `bizosaas-redis verify` runs them,
# and the integration tests call it for each deployed stack.
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


# The long modules, each a tier of its own (`scripts/test -m ha`, `-m faults`).
TIERS = {
    "test_sentinel_hosts": "ha",
    "test_hosts": "ha",
    "test_faults": "faults",
    "test_data_safety": "faults",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the real services their fixtures start (and the one that installs the
    package into a fresh venv), and the long modules by their tier: `-m "not docker and not
    install"` is the fast tier (`scripts/test --fast`), and no test can forget its marker."""
    for item in items:
        tier = TIERS.get(item.path.stem)
        if tier:
            item.add_marker(getattr(pytest.mark, tier))
        names = set(getattr(item, "fixturenames", ()))
        if names & {"docker_client", "offline_image", "engine", "deployed"}:
            item.add_marker(pytest.mark.docker)
        if "start_redis" in names:
            item.add_marker(pytest.mark.redis)
        if "installed" in names:
            item.add_marker(pytest.mark.install)
    # A test that restarts the Docker engine runs last: every other deployment restarts with
    # it. Before it, the one that makes the engine a Swarm node for a while.
    items.sort(
        key=lambda item: (
            item.get_closest_marker("engine_restart") is not None,
            item.get_closest_marker("swarm") is not None,
        )
    )


def unavailable(reason: str) -> None:
    """Fail in CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"CI needs this and it is not available: {reason}")
    pytest.skip(reason)


class RedisProcess:
    """A redis-server started with a given config on a free loopback port."""

    def __init__(
        self,
        conf_text: str,
        workdir: Path,
        tls: bool = False,
        command: list[str] | None = None,
        sentinel: bool = False,
    ):
        self.port = free_port()
        self.workdir = workdir
        self.conf = workdir / "redis.conf"
        # redis-server changes to `dir` while reading the file, before the command line.
        conf_text = re.sub(r"^dir .*$", f"dir {workdir}", conf_text, flags=re.M)
        # A deployed redis.conf includes the container's online.conf and names its users.acl;
        # a test appends their text (render_online, render_users: `user` lines are config
        # lines too) to the config it gives.
        conf_text = conf_text.replace(f"include {redis_conf.ONLINE_CONFIG_PATH}\n", "")
        conf_text = conf_text.replace(f"aclfile {redis_conf.USERS_PATH}\n", "")
        self.conf.write_text(conf_text)
        self.conf.chmod(0o600)
        self.log = workdir / "redis.log"
        ports = ["--port", "0", "--tls-port", str(self.port)] if tls else ["--port", str(self.port)]
        self.proc = subprocess.Popen(
            # --dir too: a config without `dir` would write dump.rdb into the current folder.
            [
                *(command or ["redis-server"]),
                str(self.conf),
                *(["--sentinel"] if sentinel else []),
                *ports,
                "--bind",
                "127.0.0.1",
                "--dir",
                str(workdir),
                "--logfile",
                str(self.log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {self.log.read_text() if self.log.exists() else ''}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not listen in time")

    def client(self, **kwargs) -> redis.Redis:
        # No retries: redis-py retries failed connections (auth failures too) with backoff.
        kwargs.setdefault("retry", Retry(NoBackoff(), 0))
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, **kwargs)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def open_conf(stack: str = "dev", **update: Any) -> str:
    """A stack's redis.conf with its online.conf (`update`: settings changed) and no users
    but a default one without a password, for a redis-server outside a container
    (RedisProcess drops the include and the aclfile)."""
    settings = load_stack_file(stack).model_copy(update=update)
    users = "user default on nopass ~* &* +@all\n"
    return redis_conf.render_config(settings) + redis_conf.render_online(settings) + users


def server_conf(settings: Settings, app: str | None, admin: str) -> str:
    """A deployed server's redis.conf with its online.conf and users, as one text for a
    redis-server outside a container (RedisProcess drops the include and the aclfile)."""
    online, users = redis_conf.render_online(settings), redis_conf.render_users(settings, app, admin)
    return redis_conf.render_config(settings) + online + users


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator:
    """Start redis-server with a config text; the command line overrides port, bind and dir."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed (apt-get install redis-server)")
    started: list[RedisProcess] = []

    def _start(
        conf_text: str, tls: bool = False, server_name: str | None = None, sentinel: bool = False
    ) -> RedisProcess:
        """`server_name`: one of the offline images' servers (redis-8.0, valkey-8.1), run on
        this host with its own libraries; default this host's redis-server. `sentinel`: a
        Sentinel (the config holds its `sentinel monitor` lines)."""
        workdir = tmp_path / f"redis{len(started)}"
        workdir.mkdir()
        command = None
        if server_name:
            from bizosaas_redis_ops.images import offline_image

            command = offline_image.host_command(offline_image.SERVERS[server_name], "redis-server")
        server = RedisProcess(conf_text, workdir, tls=tls, command=command, sentinel=sentinel)
        started.append(server)
        server.wait_ready()
        return server

    yield _start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def docker_client():
    from bizosaas_redis_ops.deploy.docker_engine import EngineError, ensure_engine

    try:
        return ensure_engine()
    except EngineError as exc:
        unavailable(str(exc))


@pytest.fixture(scope="session")
def offline_image(docker_client) -> str:
    from bizosaas_redis_ops.images import exporter_image
    from bizosaas_redis_ops.images import offline_image as builder

    STAND_INS["exporterImage"] = exporter_image.build(docker_client)
    return builder.build(docker_client)


# The exporter's stand-in (built with the Redis one), for every test deployment.
STAND_INS: dict[str, str] = {}


def stand_in_overrides(stack: str, image: str, names: dict[str, str] | None = None) -> dict[str, Any]:
    """A test deployment's own names (or `names`), the Redis and exporter stand-ins, free ports."""
    return {
        **(names or own_names(stack)),
        "image": image,
        **STAND_INS,
        "hostPort": free_port(),
        "exporterPort": free_port(),
    }


# --- the three stacks deployed once per session (integration tests) -------------------
# Each runs from its real stack file under the tests' own names (container, volume,
# network, port), through `bizosaas-redis up` and the real Pulumi engine, from a project
# folder of the tests' own (sandbox.py), so a test can never touch a deployment named like
# a real stack's, nor the checkout's stack files and state. Tests that change a deployment
# put it back as they found it.

STACKS = ["dev", "staging", "production"]
TEST_PREFIX = "bizosaas-test"
# Dokploy's network, as the tests make it for staging and production.
TEST_EXTERNAL_NETWORK = f"{TEST_PREFIX}-dokploy"
# Set to run the tests on an engine that also runs a real stack (they never touch it).
SHARE_ENGINE_VARIABLE = "BIZOSAAS_TESTS_SHARE_ENGINE"


def own_names(stack: str) -> dict[str, str]:
    """The settings that give a stack's test deployment its own names."""
    external = load_stack_file(stack, ROOT).network_external
    return {
        "containerName": f"{TEST_PREFIX}-{stack}",
        "volumeName": f"{TEST_PREFIX}-{stack}-data",
        "networkName": TEST_EXTERNAL_NETWORK if external else f"{TEST_PREFIX}-{stack}",
    }


def own_settings(stack: str) -> Settings:
    """The stack's settings as its test deployment runs them."""
    return build_settings({**read_stack_config(stack_file(stack, ROOT)), **own_names(stack)}, stack)


def real_names() -> set[str]:
    """Containers and volumes the real stacks use (both instances of a split stack)."""
    names: set[str] = set()
    for stack in available_stacks(ROOT):
        for settings in instances(load_stack_file(stack, ROOT)):
            names |= {settings.name, settings.volume_name}
    return names


# The installed console script, as users run it.
CLI = Path(sys.executable).parent / "bizosaas-redis"


# The session's three deployed stacks (the `deployed` fixture), for the helpers below.
DEPLOYED: dict[str, Sandbox] = {}


def cli(*args: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run `bizosaas-redis ARGS` as a user would, on the deployed stacks' project folder."""
    if env is None:
        project_env = next(iter(DEPLOYED.values())).env() if DEPLOYED else {}
        env = {**os.environ, **project_env}
    result = subprocess.run(
        [str(CLI), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def outputs(stack: str) -> dict:
    """A deployed test stack's outputs, secrets in clear (never print them)."""
    return DEPLOYED[stack].outputs()


def app_client(stack: str) -> redis.Redis:
    return redis.Redis.from_url(outputs(stack)["redis_url"], decode_responses=True)


def admin_client(stack: str, db: int = 0, decode: bool = True) -> redis.Redis:
    from bizosaas_redis.connection import with_db

    return redis.Redis.from_url(with_db(outputs(stack)["redis_admin_url"], db), decode_responses=decode)


def remove_leftovers(client: docker.DockerClient) -> None:
    """Containers, volumes and networks of an interrupted run (only ever the tests' own names)."""
    for container in client.containers.list(all=True, filters={"name": f"^/{TEST_PREFIX}-"}):
        container.remove(force=True, v=True)
    for network in client.networks.list():
        if network.name.startswith(f"{TEST_PREFIX}-") and network.name != TEST_EXTERNAL_NETWORK:
            with contextlib.suppress(docker.errors.APIError):
                network.remove()
    for volume in client.volumes.list():
        if volume.name.startswith(f"{TEST_PREFIX}-"):
            with contextlib.suppress(docker.errors.APIError):
                volume.remove(force=True)


def _refuse_an_engine_with_real_stacks(client: docker.DockerClient) -> None:
    found = {c.name for c in client.containers.list(all=True)} | {v.name for v in client.volumes.list()}
    live = sorted(found & real_names())
    if live and os.environ.get(SHARE_ENGINE_VARIABLE) != "1":
        pytest.fail(
            f"this Docker engine holds {', '.join(live)}, named like a real stack's: the tests refuse to run "
            f"here (they never touch those names; set {SHARE_ENGINE_VARIABLE}=1 to run anyway)",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def project() -> Iterator[Project]:
    """The Pulumi project folder of the deployed stacks (the checkout's stay untouched)."""
    made = Project()
    yield made
    made.remove()


@pytest.fixture(scope="session")
def engine(docker_client, offline_image):
    """A clean engine for the test stacks, their "Dokploy" network present."""
    _refuse_an_engine_with_real_stacks(docker_client)
    remove_leftovers(docker_client)
    if not docker_client.networks.list(names=[TEST_EXTERNAL_NETWORK]):
        docker_client.networks.create(TEST_EXTERNAL_NETWORK, driver="bridge")  # as Dokploy does
    yield docker_client
    remove_leftovers(docker_client)
    for net in docker_client.networks.list(names=[TEST_EXTERNAL_NETWORK]):
        net.remove()


def sandbox_of(stack: str, image: str, *settings: str, names: dict[str, str] | None = None) -> Sandbox:
    """A sandbox of `stack` under the tests' names (or `names`), the image and a free port."""
    from bizosaas_redis_ops.deploy.sandbox import parse_assignments

    return Sandbox(stack, {**stand_in_overrides(stack, image, names), **parse_assignments(settings)})


@pytest.fixture(scope="session")
def deployed(engine, offline_image, project) -> Iterator[dict[str, Sandbox]]:
    """All three stacks up through `bizosaas-redis up`; stack -> its sandbox (tests that
    move a port update it)."""
    for stack in STACKS:
        DEPLOYED[stack] = Sandbox(stack, stand_in_overrides(stack, offline_image), project)
        DEPLOYED[stack].up()
    yield DEPLOYED
    for sandbox in DEPLOYED.values():
        sandbox.close(engine)
    DEPLOYED.clear()
