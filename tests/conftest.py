"""Shared fixtures: real redis-server processes and a real Docker engine.

In CI (CI=true) a fixture that cannot start its real part fails the test; elsewhere it
skips with the reason, so a laptop without Docker can still run the unit tests.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

ROOT = Path(__file__).resolve().parents[1]
# tests/infra is the testinfra suite of one deployment: scripts/verify runs it, with
# --stack; the integration tests call scripts/verify for each deployed stack.
collect_ignore = ["infra"]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def unavailable(reason: str) -> None:
    """Fail in CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"CI needs this and it is not available: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisProcess:
    """A redis-server started with a given config on a free loopback port."""

    def __init__(self, conf_text: str, workdir: Path, tls: bool = False):
        self.port = free_port()
        self.workdir = workdir
        self.conf = workdir / "redis.conf"
        # redis-server changes to `dir` while reading the file, before the command line.
        self.conf.write_text(re.sub(r"^dir .*$", f"dir {workdir}", conf_text, flags=re.M))
        self.conf.chmod(0o600)
        self.log = workdir / "redis.log"
        ports = ["--port", "0", "--tls-port", str(self.port)] if tls else ["--port", str(self.port)]
        self.proc = subprocess.Popen(
            ["redis-server", str(self.conf), *ports, "--bind", "127.0.0.1", "--logfile", str(self.log)],
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


@pytest.fixture
def start_redis(tmp_path: Path) -> Iterator:
    """Start redis-server with a config text; the command line overrides port, bind and dir."""
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed (apt-get install redis-server)")
    started: list[RedisProcess] = []

    def _start(conf_text: str, tls: bool = False) -> RedisProcess:
        workdir = tmp_path / f"redis{len(started)}"
        workdir.mkdir()
        server = RedisProcess(conf_text, workdir, tls=tls)
        started.append(server)
        server.wait_ready()
        return server

    yield _start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def docker_client():
    from redisops.engine import EngineError, ensure_engine

    try:
        return ensure_engine()
    except EngineError as exc:
        unavailable(str(exc))


@pytest.fixture(scope="session")
def offline_image(docker_client) -> str:
    from redisops import offline_image as builder

    return builder.build(docker_client)
