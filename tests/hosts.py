"""Several Docker hosts on one machine, for tests that need a host to fail or be cut off.

Each host is a network namespace made by the tests, joined to the machine by a veth pair
on a bridge of their own (10.231.0.0/24: the bridge is .1, host N is .(10+N)), running
its own dockerd with its own data root and socket. Containers run with the host's
network (`network_mode="host"`), so they listen on the host's own address, as on a
separate machine. `dockerd` is entered into the namespace with `nsenter --net`: `ip
netns exec` remounts /sys, which hides the cgroup mounts dockerd needs.

Everything here is named `bzt-*` and removed by `close()`, also after a failed start.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker

PREFIX = "bzt"
BRIDGE = f"{PREFIX}-br0"
SUBNET = "10.231.0"
BRIDGE_ADDRESS = f"{SUBNET}.1"
# The machine's Docker sets FORWARD's policy to DROP, and bridged frames pass iptables
# (br_netfilter): hosts on the tests' bridge may talk to each other.
FORWARD_RULE = ("FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT")
# Unix socket paths are limited to 108 bytes: keep each host's folder short.
ROOT = Path("/tmp")


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


@dataclass
class DockerHost:
    """One simulated machine: namespace, address, dockerd, client."""

    index: int
    folder: Path = field(init=False)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    client: docker.DockerClient | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.folder = ROOT / f"{PREFIX}-h{self.index}"

    @property
    def name(self) -> str:
        return f"{PREFIX}-h{self.index}"

    @property
    def address(self) -> str:
        return f"{SUBNET}.{10 + self.index}"

    @property
    def outside(self) -> str:
        """The host-side end of its veth pair: down means cut off."""
        return f"{PREFIX}h{self.index}a"

    @property
    def socket(self) -> str:
        return f"unix://{self.folder}/docker.sock"

    def start(self, timeout: float = 60) -> None:
        inside = f"{PREFIX}h{self.index}b"
        _run("ip", "netns", "add", self.name)
        _run("ip", "link", "add", self.outside, "type", "veth", "peer", "name", inside)
        _run("ip", "link", "set", inside, "netns", self.name)
        _run("ip", "link", "set", self.outside, "master", BRIDGE)
        _run("ip", "link", "set", self.outside, "up")
        for command in (
            ("ip", "addr", "add", f"{self.address}/24", "dev", inside),
            ("ip", "link", "set", inside, "up"),
            ("ip", "link", "set", "lo", "up"),
        ):
            _run("ip", "netns", "exec", self.name, *command)
        self.folder.mkdir(parents=True, exist_ok=True)
        log = (self.folder / "dockerd.log").open("wb")
        self.process = subprocess.Popen(
            [
                *("nsenter", f"--net=/run/netns/{self.name}", "dockerd"),
                *("--data-root", str(self.folder / "root"), "--exec-root", str(self.folder / "x")),
                *("--pidfile", str(self.folder / "docker.pid"), "-H", self.socket),
                *("--bridge", "none", "--iptables=false", "--ip-forward=false", "--ip-masq=false"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"dockerd of {self.name} exited: {self._log_tail()}")
            with contextlib.suppress(docker.errors.DockerException):
                client = docker.DockerClient(base_url=self.socket, timeout=30)
                client.ping()
                self.client = client
                return
            time.sleep(0.2)
        raise RuntimeError(f"dockerd of {self.name} did not answer within {timeout:.0f} s: {self._log_tail()}")

    def _log_tail(self) -> str:
        path = self.folder / "dockerd.log"
        return path.read_text(errors="replace")[-400:] if path.exists() else ""

    def load_image(self, source: docker.DockerClient, tag: str) -> None:
        """Copy an image from another engine (`docker save | docker load`): no registry needed."""
        assert self.client is not None
        data = b"".join(source.api.get_image(tag))  # saved under this tag, not the image's first
        self.client.images.load(data)

    def cut_off(self) -> None:
        """The host drops off the network (its link down), as a partition or a pulled cable."""
        _run("ip", "link", "set", self.outside, "down")

    def reconnect(self) -> None:
        _run("ip", "link", "set", self.outside, "up")

    def close(self) -> None:
        if self.client is not None:
            with contextlib.suppress(docker.errors.DockerException):
                for container in self.client.containers.list(all=True):
                    container.remove(force=True)
            self.client.close()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        # dockerd leaves its namespace and overlay mounts under its folders when killed.
        mounts = Path("/proc/mounts").read_text().split("\n")
        for target in sorted({line.split()[1] for line in mounts if f" {self.folder}/" in line}, reverse=True):
            _run("umount", "-l", target, check=False)
        _run("ip", "link", "del", self.outside, check=False)
        _run("ip", "netns", "del", self.name, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def docker_hosts(count: int):  # type: ignore[no-untyped-def]
    """`count` Docker hosts on the tests' bridge; all of it removed afterwards."""
    hosts = [DockerHost(index) for index in range(1, count + 1)]
    _run("ip", "link", "add", BRIDGE, "type", "bridge", check=False)
    _run("ip", "addr", "replace", f"{BRIDGE_ADDRESS}/24", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")
    _run("iptables", "-I", *FORWARD_RULE)
    try:
        for host in hosts:
            host.close()  # leftovers of an interrupted run
            host.start()
        yield hosts
    finally:
        for host in hosts:
            host.close()
        _run("iptables", "-D", *FORWARD_RULE, check=False)
        _run("ip", "link", "del", BRIDGE, check=False)
