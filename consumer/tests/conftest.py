"""Real redis-server processes on loopback for the consumer library's own tests.

Self-contained on purpose: these tests run in an environment holding only the library, its
redis-py (the lowest or the newest the range allows) and pytest. In CI (CI=true) a missing
redis-server fails the tests; elsewhere they skip with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def client(self, **kwargs: object) -> redis.Redis:
        options = {"decode_responses": True, **kwargs}
        return redis.Redis(host="127.0.0.1", port=self.port, **options)  # type: ignore[arg-type]


def _wait_listening(server: Server, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"redis-server exited: {server.log.read_text() if server.log.exists() else ''}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"redis-server did not listen on 127.0.0.1:{server.port} within {timeout} s")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start redis-server with `conf` (redis.conf lines); `sentinel=True` starts a Sentinel."""
    if shutil.which("redis-server") is None:
        reason = "redis-server is not installed (apt-get install redis-server)"
        if IN_CI:
            pytest.fail(f"CI needs this and it is not available: {reason}")
        pytest.skip(reason)
    started: list[Server] = []

    def start(conf: str = "", sentinel: bool = False) -> Server:
        folder = tmp_path / f"server{len(started)}"
        folder.mkdir()
        port, log = free_port(), folder / "redis.log"
        config = folder / "redis.conf"
        config.write_text(f'port {port}\nbind 127.0.0.1\ndir {folder}\nlogfile {log}\nsave ""\n{conf}')
        command = ["redis-server", str(config), *(["--sentinel"] if sentinel else [])]
        server = Server(port, subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT), log)
        started.append(server)
        _wait_listening(server)
        return server

    yield start
    for server in started:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()


OPEN = "user default on nopass ~* &* +@all\n"


@pytest.fixture
def client(start_server: Callable[..., Server]) -> redis.Redis:
    return start_server(OPEN).client()
