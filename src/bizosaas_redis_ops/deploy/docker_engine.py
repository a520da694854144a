"""Reach a Docker engine: use the running one, or install and start Debian's dockerd."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, BinaryIO

import docker

from bizosaas_redis.answers import refusal
from bizosaas_redis.errors import BizosaasRedisError

SOCKET = Path("/var/run/docker.sock")
DOCKERD_LOG = Path("/tmp/bizosaas-dockerd.log")
# What docker-py says when no engine listens at the address (as opposed to one that refuses us).
ENGINE_ABSENT = ("No such file or directory", "Connection refused")


class EngineError(BizosaasRedisError):
    pass


def _client() -> docker.DockerClient | None:
    if not SOCKET.exists() and "DOCKER_HOST" not in os.environ:
        return None
    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except (docker.errors.DockerException, OSError) as error:  # requests' errors are OSErrors
        # No engine listens (a socket file left behind, a refused port): one may be started.
        if any(marker in str(error) for marker in ENGINE_ABSENT):
            return None
        where = os.environ.get("DOCKER_HOST", f"unix://{SOCKET}")
        hint = "fix its access, or unset DOCKER_HOST"
        raise EngineError(refusal(f"the Docker engine at {where}", error, hint)) from None


def _start_detached(argv: list[str], log_path: Path) -> None:
    """Start a daemon that is not this process's child (a double fork through `sh`).

    The daemon is adopted by init, which reaps it when it exits: a child of this process
    would stay a zombie after a stop until this process waited for it, and would die with
    this process's session.
    """
    with log_path.open("ab") as log:
        subprocess.run(
            ["sh", "-c", 'exec "$@" </dev/null &', "sh", *argv],
            stdout=log,
            stderr=log,
            start_new_session=True,
            check=True,
        )


def ensure_engine(start: bool = True, wait_seconds: float = 60) -> docker.DockerClient:
    """A client of a running engine; start dockerd (as root) when none answers.

    Never touches containers it did not create; an engine already running is used as is.
    """
    client = _client()
    if client is not None or not start:
        if client is None:
            raise EngineError("no Docker engine answers at /var/run/docker.sock")
        return client
    if os.geteuid() != 0:
        raise EngineError(
            "no Docker engine answers at /var/run/docker.sock and starting dockerd needs "
            "root: start Docker (systemctl start docker) or run as root"
        )
    if shutil.which("dockerd") is None:
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        result = subprocess.run(
            ["apt-get", "install", "-y", "-qq", "docker.io"],
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            capture_output=True,
            text=True,
        )
        if result.returncode != 0 or shutil.which("dockerd") is None:
            raise EngineError(f"could not install docker.io: {result.stderr.strip()[-500:]}")
    _start_detached(["dockerd"], DOCKERD_LOG)
    deadline = time.monotonic() + wait_seconds
    while time.monotonic() < deadline:
        client = _client()
        if client is not None:
            return client
        time.sleep(0.5)
    tail = DOCKERD_LOG.read_text(errors="replace")[-1500:] if DOCKERD_LOG.exists() else ""
    raise EngineError(f"dockerd did not answer within {wait_seconds:.0f}s; its log ends:\n{tail}")


def run_to_completion(
    client: docker.DockerClient,
    image: str,
    command: list[str],
    timeout: float = 600,
    upload: bytes | BinaryIO | None = None,
    **create: Any,
) -> tuple[int, str]:
    """Run a one-off container to its end: its exit code and output (stdout and stderr).
    `upload`: a tar archive extracted at / before it starts (through the engine's API, so
    it works on a remote engine, where a bind mount would name a path on that host).

    It is removed afterwards with its anonymous volumes (an image's `VOLUME /data` gets
    one per container; `docker run --rm` from the SDK would leave them behind).
    """
    container = client.containers.create(image, command, **create)
    try:
        if upload is not None:
            container.put_archive("/", upload)
        container.start()
        status = container.wait(timeout=timeout)
        return int(status.get("StatusCode", 1)), bytes(container.logs(stdout=True, stderr=True)).decode(
            errors="replace"
        )
    finally:
        container.remove(force=True, v=True)


# Below Linux's ephemeral range (32768-60999), where outgoing connections take their
# source ports: a port the kernel hands out (bind to 0) can be taken by a client socket
# before the container publishes it ("address already in use" at its start).
PUBLISH_PORTS = range(20000, 32000)


def free_port() -> int:
    """A TCP port free on every address now, outside the ephemeral range, to publish a
    container on (staging's publishes on 0.0.0.0)."""
    start = random.randrange(len(PUBLISH_PORTS))
    for offset in range(len(PUBLISH_PORTS)):
        port = PUBLISH_PORTS[(start + offset) % len(PUBLISH_PORTS)]
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
            return port
    raise EngineError(f"no free TCP port in {PUBLISH_PORTS.start}-{PUBLISH_PORTS.stop - 1}")


def wait_healthy(client: docker.DockerClient, name: str, timeout: float, poll: float = 0.3) -> None:
    """Until the container's healthcheck passes; EngineError with its last probe and log if not."""
    deadline = time.monotonic() + timeout
    status = "unknown"
    while time.monotonic() < deadline:
        state = client.api.inspect_container(name)["State"]
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
    raise EngineError(
        f"container {name} is not healthy after {timeout:.0f}s (status {status}, "
        f"state {attrs['State']['Status']}); last probe: {last}\n--- container log ---\n{logs}"
    )
