"""Host prerequisites for a stack: Docker, kernel settings, disk, network, TLS files, the Pulumi CLI."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import docker

from bizosaas_redis.constants import REDIS_GID, REDIS_UID
from bizosaas_redis.settings import Settings, instances
from bizosaas_redis_ops import tables
from bizosaas_redis_ops.deploy.docker_engine import EngineError, ensure_engine
from bizosaas_redis_ops.deploy.pulumi_stack import INSTALL_HINT, search_path


@dataclass
class Check:
    name: str
    status: str  # OK | WARN | FAIL
    detail: str


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def doctor(settings: Settings) -> list[Check]:
    """What the host must offer before the stack deploys: Docker, kernel settings, disk,
    the network, TLS files, the userland proxy and the pulumi CLI."""
    client: docker.DockerClient | None = None
    try:
        client = ensure_engine(start=False)
        info = client.info()
        checks = [Check("docker engine", "OK", f"{info.get('ServerVersion')} answers")]
    except EngineError as exc:
        client, info = None, {}
        checks = [Check("docker engine", "FAIL", f"{exc}; start it: systemctl start docker")]
    checks += [_overcommit(), _huge_pages(), _disk(settings, info.get("DockerRootDir", "/var/lib/docker"))]
    checks.append(_network(settings, client))
    if settings.tls_enabled:
        checks.append(tls_files_check(Path(settings.tls_certs_dir or "")))
    if "DOCKER_HOST" not in os.environ:
        checks.append(userland_proxy_check(_read(DAEMON_JSON), _dockerd_cmdline(), settings.unix_socket))
    pulumi = shutil.which("pulumi", path=search_path())  # the venv's first, as bizosaas-redis runs it
    checks.append(Check("pulumi CLI", "OK" if pulumi else "WARN", pulumi or f"missing; {INSTALL_HINT}"))
    return checks


def _overcommit() -> Check:
    overcommit = _read("/proc/sys/vm/overcommit_memory")
    if overcommit == "1":
        return Check("vm.overcommit_memory", "OK", "1")
    return Check(
        "vm.overcommit_memory",
        "WARN",
        f"{overcommit}: BGSAVE/AOF rewrite forks may fail; run "
        "sysctl vm.overcommit_memory=1 and add it to /etc/sysctl.d/99-redis.conf",
    )


def _huge_pages() -> Check:
    thp = _read("/sys/kernel/mm/transparent_hugepage/enabled") or "unknown"
    if "[always]" not in thp:
        return Check("transparent huge pages", "OK", thp)
    return Check(
        "transparent huge pages",
        "WARN",
        f"{thp}: latency spikes and memory use after fork; run "
        "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled",
    )


def _disk(settings: Settings, root: str) -> Check:
    disk = "free disk for the data volume" + ("s" if settings.layout == "split" else "")
    try:
        free = shutil.disk_usage(root).free
    except OSError as exc:
        return Check(disk, "WARN", f"cannot read {root}: {exc}")
    # An RDB snapshot and an AOF rewrite can each be as large as the dataset; a split
    # stack has two datasets on this host.
    total = sum(instance.maxmemory for instance in instances(settings))
    need = 2 * total
    status = "OK" if free >= need else ("WARN" if free >= total else "FAIL")
    return Check(
        disk,
        status,
        f"{free / 1024**3:.1f} GB free in {root}; want ≥ {need / 1024**3:.1f} GB "
        "(2 × maxmemory of each instance, for RDB plus AOF rewrite)",
    )


def _network(settings: Settings, client: docker.DockerClient | None) -> Check:
    name = f"network {settings.network_name}"
    if not settings.network_external:
        return Check(name, "OK", "created by the stack")
    if client is None:
        return Check(name, "FAIL", "Docker is not reachable")
    if client.networks.list(names=[settings.network_name]):
        return Check(name, "OK", "exists (external)")
    return Check(name, "FAIL", f"missing; Dokploy creates it, or: docker network create {settings.network_name}")


DAEMON_JSON = "/etc/docker/daemon.json"


def _dockerd_cmdline() -> str | None:
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "comm").read_text().strip() == "dockerd":
                return (proc / "cmdline").read_text().replace("\0", " ")
        except OSError:
            continue
    return None


def userland_proxy_check(daemon_json: str | None, cmdline: str | None, unix_socket: bool) -> Check:
    """Docker's userland proxy carries every connection to a published port made from the
    host itself: measured at about 0.3 × the server's requests/s (docs/measurements/performance.md)."""
    off = "--userland-proxy=false" in (cmdline or "")
    if daemon_json:
        try:
            off = off or json.loads(daemon_json).get("userland-proxy") is False
        except (ValueError, AttributeError):
            return Check("docker userland-proxy", "WARN", f"{DAEMON_JSON} is not valid JSON")
    if off:
        return Check("docker userland-proxy", "OK", "off: host clients reach the published port through the kernel")
    if unix_socket:
        return Check("docker userland-proxy", "OK", "on; host tools should use the unix socket (unixSocket: true)")
    return Check(
        "docker userland-proxy",
        "WARN",
        "on (Docker's default): host-side clients of the published port get about 0.3 × the server's "
        'requests/s; use unixSocket: true, or set "userland-proxy": false in /etc/docker/daemon.json and '
        "restart dockerd (containers on the network are not affected)",
    )


def tls_files_check(folder: Path, uid: int = REDIS_UID, gid: int = REDIS_GID) -> Check:
    """The certificate files exist and Redis (uid 999) can read them through the bind mount."""
    problems = []
    for name in ("tls.crt", "tls.key", "ca.crt"):
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} missing")
            continue
        st = path.stat()
        readable = (
            (st.st_uid == uid and st.st_mode & 0o400)
            or (st.st_gid == gid and st.st_mode & 0o040)
            or (st.st_mode & 0o004 and name != "tls.key")
        )
        if not readable:
            problems.append(f"{name} unreadable by uid {uid}")
    if problems:
        return Check(
            "TLS files",
            "FAIL",
            f"{folder}: {', '.join(problems)}; run chown {uid}:{gid} {folder}/* && chmod 0600 {folder}/tls.key",
        )
    return Check("TLS files", "OK", f"{folder}: readable by the redis user")


def doctor_table(checks: list[Check]) -> str:
    return tables.render(["check", "status", "detail"], [[c.name, c.status, c.detail] for c in checks])
