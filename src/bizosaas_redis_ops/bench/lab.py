"""The benchmark's own servers, under `bizosaas-bench-*` names, removed afterwards.

- `deployment`: the stack deployed with `bizosaas-redis up` (the real engine) from a
  project folder of its own (sandbox.py), under its own names, network and port, with the
  unix socket on (the stack's settings otherwise);
- `seed`: the compose container as the seed runs it (`redis-server --maxmemory 2gb
  --maxmemory-policy allkeys-lru`, no password, no AOF) on the same network;
- `limit`: a bare redis-server of the same image on the host's network (no NAT, no
  proxy, no cgroup limit), listening on loopback and on a unix socket in an in-memory
  volume of its own, as the deployment's: its best path is the limit.
"""

from __future__ import annotations

import contextlib
import functools
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import redis

from bizosaas_redis import redis_conf
from bizosaas_redis.connection import with_db
from bizosaas_redis.settings import Settings
from bizosaas_redis_ops.bench import NAME_PREFIX
from bizosaas_redis_ops.bench.runner import BenchmarkError
from bizosaas_redis_ops.deploy.docker_engine import free_port
from bizosaas_redis_ops.deploy.sandbox import Sandbox, parse_assignments, settings_of
from bizosaas_redis_ops.images import exporter_image

# The official image is built with protected mode off; Debian's server (the offline
# stand-in) is not, so the seed's container says it on its command line.
# The deployment's socket volume (in memory, Redis's user and group) for the limit's socket.
SOCKET_VOLUME_OPTS = redis_conf.socket_volume_opts()
SEED_COMMAND = ["redis-server", "--maxmemory", "2gb", "--maxmemory-policy", "allkeys-lru", "--protected-mode", "no"]


def wait_for(client: redis.Redis, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.ping()
            return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise BenchmarkError(f"a benchmark server did not answer within {timeout:.0f} s") from None
            time.sleep(0.1)


@dataclass
class Lab:
    engine: docker.DockerClient
    stack: str
    image: str | None  # None: the stack's own image
    settings: list[str] = field(default_factory=list)  # more KEY=VALUE for the deployment
    prefix: str = NAME_PREFIX
    port: int = field(default_factory=free_port)
    exporter_port: int = field(default_factory=free_port)
    _sandbox: Sandbox | None = None  # made by the first deploy
    _made: list[str] = field(default_factory=list)  # containers started outside the stack
    _volumes: list[str] = field(default_factory=list)  # volumes made outside the stack

    # --- the deployment ------------------------------------------------------------------

    @property
    def container_name(self) -> str:
        return f"{self.prefix}-redis"

    @property
    def volume_name(self) -> str:
        return f"{self.prefix}-data"

    @property
    def network(self) -> str:
        return f"{self.prefix}-net"

    @property
    def seed_name(self) -> str:
        return f"{self.prefix}-seed"

    @functools.cached_property
    def exporter_image(self) -> str:
        """The exporter's stand-in, built (or found current) once per lab."""
        return exporter_image.build(self.engine)

    def overrides(self, *more: str) -> dict[str, Any]:
        found: dict[str, Any] = {
            "containerName": self.container_name,
            "volumeName": self.volume_name,
            "networkName": self.network,
            "networkExternal": False,
            "publishAddress": "127.0.0.1",
            "hostPort": self.port,
            "exporterPort": self.exporter_port,
            "unixSocket": True,
        }
        if self.image:
            found["image"] = self.image
            # Where Redis is the stand-in, no registry serves the exporter's image either.
            found["exporterImage"] = self.exporter_image
        return found | parse_assignments([*self.settings, *more])

    @property
    def sandbox(self) -> Sandbox:
        if self._sandbox is None:
            self._sandbox = Sandbox(self.stack, self.overrides())
        return self._sandbox

    def deploy(self, *more: str) -> str:
        """`bizosaas-redis up` of the stack with the lab's settings and `more`; its output."""
        self.sandbox.overrides = self.overrides(*more)
        return self.sandbox.up()

    def remove_deployment(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close(self.engine)
            self._sandbox.project.remove()
            self._sandbox = None

    def deployed_settings(self) -> Settings:
        return settings_of(self.stack, self.overrides())

    def admin(self) -> redis.Redis:
        # The outputs are read once per deployment (each read runs the Pulumi CLI).
        return redis.Redis.from_url(with_db(self.sandbox.outputs()["redis_admin_url"], 0), socket_timeout=30)

    def deployment_image(self) -> str:
        return str(self.engine.containers.get(self.container_name).attrs["Config"]["Image"])

    def socket_on_host(self) -> str:
        """The socket through the volume's mount point (root reaches it from the host)."""
        volume = self.engine.volumes.get(self.deployed_settings().socket_volume_name)
        return str(Path(volume.attrs["Mountpoint"]) / Path(redis_conf.SOCKET_PATH).name)

    @contextlib.contextmanager
    def disposable_user(self) -> Iterator[tuple[str, str]]:
        """An ACL user with the application user's rights, deleted afterwards."""
        admin = self.admin()
        name, password = f"bench-{secrets.token_hex(4)}", secrets.token_hex(16)
        rules = redis_conf.acl_rules(self.deployed_settings()).split()
        admin.execute_command("ACL", "SETUSER", name, "reset", "on", f">{password}", *rules)
        try:
            yield name, password
        finally:
            admin.execute_command("ACL", "DELUSER", name)

    # --- the seed's container and the limit ----------------------------------------------------

    def start_seed(self) -> int:
        """The compose service as the seed runs it; returns its published port."""
        port = free_port()
        self._run(
            self.seed_name,
            SEED_COMMAND,
            network=self.network,
            ports={"6379/tcp": ("127.0.0.1", port)},
        )
        wait_for(redis.Redis(port=port))
        return port

    @property
    def limit_socket_volume(self) -> str:
        return f"{self.prefix}-limit-socket"

    def start_limit(self, server_args: list[str]) -> int:
        """redis-server of the same image on the host's loopback and on a unix socket at
        the deployment's path, in a volume like the deployment's (limit_socket_volume);
        returns its port."""
        port = free_port()
        self.engine.volumes.create(self.limit_socket_volume, driver="local", driver_opts=SOCKET_VOLUME_OPTS)
        self._volumes.append(self.limit_socket_volume)
        args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "no"]
        args += ["--unixsocket", redis_conf.SOCKET_PATH, "--unixsocketperm", redis_conf.SOCKET_PERM]
        self._run(
            f"{self.prefix}-limit",
            [*args, *server_args],
            network_mode="host",
            volumes={self.limit_socket_volume: {"bind": redis_conf.SOCKET_DIR, "mode": "rw"}},
        )
        wait_for(redis.Redis(port=port))
        return port

    def _run(self, name: str, command: list[str], **kwargs: Any) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.engine.containers.get(name).remove(force=True, v=True)
        self.engine.containers.run(
            self.deployment_image(), command, name=name, detach=True, labels={"com.bizosaas.bench": "1"}, **kwargs
        )
        self._made.append(name)

    def close(self) -> None:
        for name in self._made:
            with contextlib.suppress(docker.errors.NotFound):
                self.engine.containers.get(name).remove(force=True, v=True)
        self._made.clear()
        for name in self._volumes:
            with contextlib.suppress(docker.errors.NotFound):
                self.engine.volumes.get(name).remove(force=True)
        self._volumes.clear()
        self.remove_deployment()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
