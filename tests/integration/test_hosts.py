"""The test harness's Docker hosts behave as separate machines: each serves on its own
address, reaches the others, and drops off the network when cut off."""

from __future__ import annotations

import subprocess
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hosts import DockerHost, docker_hosts


def _ping(address: str) -> bool:
    """From this machine, as a client elsewhere would."""
    client = redis.Redis(address, socket_connect_timeout=2, socket_timeout=2, retry=Retry(NoBackoff(), 0))
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def _ping_from(host: DockerHost, image: str, address: str) -> bool:
    """From a container on another host."""
    assert host.client is not None
    output = host.client.containers.run(
        image, ["sh", "-c", f"timeout 3 redis-cli -h {address} ping || true"], network_mode="host", remove=True
    )
    return bool(output.decode().strip() == "PONG")


def _eventually(check, timeout: float = 10) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.usefixtures("offline_image")
def test_two_hosts_serve_reach_each_other_and_can_be_cut_off(docker_client, offline_image):
    with docker_hosts(2) as (first, second):
        for host in (first, second):
            host.load_image(docker_client, offline_image)
            host.client.containers.run(
                offline_image,
                ["redis-server", "--bind", host.address, "--protected-mode", "no", "--save", ""],
                network_mode="host",
                detach=True,
                name="bzt-redis",
            )
        assert _eventually(lambda: _ping(first.address) and _ping(second.address))
        assert _ping_from(first, offline_image, second.address)

        second.cut_off()
        assert not _ping(second.address) and not _ping_from(first, offline_image, second.address)
        assert _ping(first.address), "only the host cut off is gone"
        second.reconnect()
        assert _eventually(lambda: _ping(second.address)) and _ping_from(first, offline_image, second.address)
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert "bzt" not in links and "bzt" not in subprocess.run(["ip", "netns"], capture_output=True, text=True).stdout
    assert "bzt" not in subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True).stdout
