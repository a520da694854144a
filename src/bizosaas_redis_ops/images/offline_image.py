"""Build local stand-ins for the official images from Debian's packages, for machines
that reach no registry.

Each holds one server with its shared libraries, busybox-static as /bin/sh (testinfra
needs a shell), the official image's user (999:1000) owning /data, and an entrypoint
that behaves like the official one; the tag says what it is:

- `redis-7.0`: Debian 12's redis-server 7.0, from this host's packages;
- `redis-8.0`: Debian 13's redis-server 8.0 with Debian 13's own libraries;
- `valkey-8.1`: Debian 13's valkey-server 8.1, with the `redis-*` names beside its own,
  as Valkey installs them.

Debian 13's packages are downloaded with an apt configuration of their own into a cache
outside the repository (~/.cache/bizosaas-redis/debian-trixie); the host's sources are
never changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker

from bizosaas_redis.constants import REDIS_GID, REDIS_UID, REDIS_USER
from bizosaas_redis.settings import Settings
from bizosaas_redis_ops.deploy.docker_engine import ensure_engine, run_to_completion
from bizosaas_redis_ops.images import rootfs
from bizosaas_redis_ops.images.rootfs import (
    CACHE,
    DEBIAN_LOADER,
    OfflineImageError,
    add_base,
    add_dir,
    add_file,
    add_link,
    add_text,
    apt,
    build_unless_current,
    libraries,
)


@dataclass(frozen=True)
class Server:
    name: str
    tag: str
    description: str
    suite: str | None  # None: this host's own packages
    packages: tuple[str, ...]
    # Real files, as the packages install them; setpriv (util-linux) steps down from root,
    # which busybox's cannot.
    binaries: tuple[str, ...]
    links: tuple[tuple[str, str], ...]  # (path, target): the names the modes answer to

    @property
    def flavour(self) -> str:
        return self.name.split("-", 1)[0]


def _binaries(program: str) -> tuple[str, ...]:
    """The files each stand-in copies: the flavour's tools (redis-server is a link to
    <program>-check-rdb in the packages) and setpriv."""
    tools = ("check-rdb", "cli", "check-aof", "benchmark")
    return (*(f"/usr/bin/{program}-{tool}" for tool in tools), "/usr/bin/setpriv")


SERVERS = {
    s.name: s
    for s in (
        Server(
            "redis-7.0",
            "localhost/redis-offline:7.0",
            "Offline stand-in for redis:7-alpine: Debian 12 redis-server 7.0",
            None,
            ("redis-server", "redis-tools"),
            _binaries("redis"),
            (("/usr/bin/redis-server", "redis-check-rdb"),),
        ),
        Server(
            "redis-8.0",
            "localhost/redis-offline:8.0",
            "Offline stand-in for redis:8.0-alpine: Debian 13 redis-server 8.0",
            "trixie",
            ("redis-server", "redis-tools", "util-linux"),
            _binaries("redis"),
            (("/usr/bin/redis-server", "redis-check-rdb"),),
        ),
        Server(
            "valkey-8.1",
            "localhost/valkey-offline:8.1",
            "Offline stand-in for valkey/valkey:8.1-alpine: Debian 13 valkey-server 8.1",
            "trixie",
            ("valkey-server", "valkey-tools", "util-linux"),
            _binaries("valkey"),
            (
                ("/usr/bin/valkey-server", "valkey-check-rdb"),
                ("/usr/bin/redis-server", "valkey-check-rdb"),
                ("/usr/bin/redis-check-rdb", "valkey-check-rdb"),
                ("/usr/bin/redis-check-aof", "valkey-check-aof"),
                ("/usr/bin/redis-cli", "valkey-cli"),
                ("/usr/bin/redis-benchmark", "valkey-benchmark"),
            ),
        ),
    )
}
DEFAULT_SERVER = "redis-7.0"
TAG = SERVERS[DEFAULT_SERVER].tag
# Applets that the entrypoint, healthcheck and testinfra use.
APPLETS = [
    "sh",
    "cat",
    "ls",
    "id",
    "grep",
    "test",
    "stat",
    "touch",
    "rm",
    "mkdir",
    "chown",
    "sleep",
    "ps",
    "netstat",
    "head",
    "tail",
    "wc",
    "find",
    "env",
    "echo",
    "readlink",
    "sed",
    "awk",
    "tr",
    "cut",
    "kill",
    "uname",
    "df",
    "du",
    "sha256sum",
]
ENTRYPOINT = """#!/bin/sh
# Like the official image's docker-entrypoint.sh: `redis.conf` or `-flags` mean
# redis-server; as root, own /data and step down to the redis user.
set -e
case "$1" in -*|*.conf) set -- redis-server "$@" ;; esac
if [ "$1" = redis-server ] && [ "$(id -u)" = 0 ]; then
    find . \\! -user redis -exec chown redis '{}' +
    exec /usr/bin/setpriv --reuid={uid} --regid={gid} --clear-groups "$0" "$@"
fi
umask 0077
exec "$@"
""".replace("{uid}", str(REDIS_UID)).replace("{gid}", str(REDIS_GID))
DOCKERFILE = """FROM scratch
ADD rootfs.tar /
ENV PATH=/usr/local/bin:/usr/bin:/bin
WORKDIR /data
VOLUME /data
EXPOSE 6379
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["redis-server"]
"""


def _ensure_host_packages(server: Server) -> None:
    missing = [b for b in [*server.binaries, "/bin/busybox"] if not Path(b).exists()]
    if missing:
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", *server.packages, "busybox-static"],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )


def server_root(server: Server) -> Path:
    """The folder holding the server's files: `/` for the host's packages, else the
    unpacked Debian packages of its suite with every library they need."""
    if server.suite is None:
        _ensure_host_packages(server)
        return Path("/")
    home = CACHE / f"debian-{server.suite}"
    root = home / f"root-{server.name}"
    if (root / ".complete").exists():
        return root
    apt(server.suite, "update", "-qq")
    closure = apt(
        server.suite, "depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
        "--no-breaks", "--no-replaces", "--no-enhances", *server.packages,
    )  # fmt: skip
    wanted = sorted(
        {line for line in closure.splitlines() if line and not line[0].isspace() and not line.startswith("<")}
        & ({*server.packages} | {n for n in closure.split() if n.startswith(("lib", "zlib"))})
    )
    debs = home / "debs"
    debs.mkdir(exist_ok=True)
    apt(server.suite, "download", *wanted, cwd=debs)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    for deb in sorted(debs.glob("*.deb")):
        if deb.name.split("_")[0] in wanted:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    (root / ".complete").write_text("\n".join(wanted) + "\n")
    return root


def host_command(server: Server, binary: str) -> list[str]:
    """How this host runs one of the server's programs (tests use it): directly for the
    host's packages, else through the server's own loader and libraries."""
    root = server_root(server)
    # Valkey's packages name its programs valkey-*; the images add the redis-* names.
    path = root / "usr/bin" / binary.replace("redis-", f"{server.flavour}-", 1)
    if server.suite is None:
        return [str(path)]
    loader = root / DEBIAN_LOADER.lstrip("/")
    return [str(loader), "--library-path", str(loader.parent), str(path)]


def build_rootfs(dest: Path, server: Server) -> None:
    """Write rootfs.tar with numeric owners (the only way /data keeps its owner)."""
    root = server_root(server)
    files = set(server.binaries) | libraries(root, server.binaries)
    with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as tar:
        add_base(tar, root, files, ("/bin", "/usr/bin", "/usr/local", "/usr/local/bin", "/usr/lib/x86_64-linux-gnu"))
        add_dir(tar, "/data", uid=REDIS_UID, gid=REDIS_GID, mode=0o755)
        add_file(tar, "/bin/busybox", mode=0o755)
        for applet in APPLETS:
            add_link(tar, f"/bin/{applet}", "busybox")
        # Debian's servers are links to their check-rdb program; the name picks the mode.
        for path, target in server.links:
            add_link(tar, path, target)
        add_text(tar, "/usr/local/bin/docker-entrypoint.sh", ENTRYPOINT, mode=0o755)
        redis_user = f"redis:x:{REDIS_UID}:{REDIS_GID}:redis:/data:/bin/sh"
        add_text(tar, "/etc/passwd", f"root:x:0:0:root:/root:/bin/sh\n{redis_user}\n")
        add_text(tar, "/etc/group", f"root:x:0:\nredis:x:{REDIS_GID}:\n")
        add_text(tar, "/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n")


def fingerprint(server: Server) -> str:
    """Changes when the packaged binaries or this builder change: the rebuild trigger."""
    root = server_root(server)
    # This builder and the shared one: a change to either rebuilds.
    digest = hashlib.sha256(Path(__file__).read_bytes() + Path(rootfs.__file__).read_bytes())
    for path in [*server.binaries]:
        digest.update((root / path.lstrip("/")).read_bytes())
    digest.update(Path("/bin/busybox").read_bytes())
    return digest.hexdigest()[:16]


def build(
    client: docker.DockerClient | None = None,
    tag: str | None = None,
    force: bool = False,
    server: str = DEFAULT_SERVER,
) -> str:
    """Build the image unless one with the same fingerprint exists. Returns its exact-version
    tag (`localhost/redis-offline:7.0.15`, beside the minor one), pinned as the policy pack
    asks of every production image."""
    if server not in SERVERS:
        raise OfflineImageError(f"--server {server}: known servers are {', '.join(SERVERS)}")
    spec = SERVERS[server]
    tag = tag or spec.tag
    client = client or ensure_engine()
    if not Path("/bin/busybox").exists():
        _ensure_host_packages(SERVERS[DEFAULT_SERVER])
    image = build_unless_current(
        client, tag, fingerprint(spec), DOCKERFILE, spec.description, lambda dest: build_rootfs(dest, spec), force
    )
    return _tag_exact_version(client, image, tag, spec)


def size_mb(tag: str, client: docker.DockerClient | None = None) -> float:
    """The image's size as Docker reports it, in MB (10^6 bytes, as `docker images` shows)."""
    client = client or ensure_engine()
    return float(client.images.get(tag).attrs["Size"]) / 1e6


def _tag_exact_version(client: docker.DockerClient, image: Any, tag: str, spec: Server) -> str:
    """Tag the image with the server's own version (`redis-server --version`: v=7.0.15)."""
    _, out = run_to_completion(client, image.id, [f"{spec.flavour}-server", "--version"], timeout=60, user=REDIS_USER)
    found = re.search(r"v=(\d+\.\d+\.\d+)", out)
    if found is None:
        raise OfflineImageError(f"{tag}: {spec.flavour}-server --version said {out[:80]!r}")
    repository = tag.rsplit(":", 1)[0]
    image.tag(repository, found.group(1))
    return f"{repository}:{found.group(1)}"


def dev_fallback(settings: Settings, client: docker.DockerClient) -> str | None:
    """On a machine that reaches no registry, the dev stack runs the offline stand-in: its
    tag (built when missing) when the stack's image is neither here nor pullable; None
    otherwise, and always for staging and production, which run only what they name."""
    if settings.environment != "dev":
        return None
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.get(settings.image)
        return None
    try:
        client.images.pull(settings.image)
        return None
    except docker.errors.APIError:
        server = next((name for name, s in SERVERS.items() if s.flavour == settings.flavour), DEFAULT_SERVER)
        return build(client, server=server)
