"""Build a local stand-in for `redis:7-alpine` from Debian's packages, for machines
that reach no registry.

Debian's redis-server/redis-cli 7.0 with their shared libraries, busybox-static as
/bin/sh (testinfra needs a shell), the official image's user (redis, 999:1000) owning
/data, and an entrypoint that behaves like the official one. The tag says what it is.
"""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import tempfile
from pathlib import Path

import docker

from bizosaas_redis.constants import REDIS_GID, REDIS_UID

from .docker_engine import ensure_engine

TAG = "localhost/redis-offline:7.0"
# setpriv from util-linux: busybox's cannot change user.
BINARIES = ["/usr/bin/redis-server", "/usr/bin/redis-cli", "/usr/bin/redis-check-aof", "/usr/bin/setpriv"]
PACKAGES = ["redis-server", "redis-tools", "busybox-static"]
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


def _ensure_packages() -> None:
    missing = [b for b in [*BINARIES, "/bin/busybox"] if not Path(b).exists()]
    if missing:
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", *PACKAGES],
            check=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )


def _libraries(binary: str) -> set[str]:
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    libs = set()
    for line in out.splitlines():
        parts = line.split()
        for part in parts:
            if part.startswith("/"):
                libs.add(part)
    return libs


def _add_file(tar: tarfile.TarFile, path: str, arcname: str | None = None, mode: int | None = None) -> None:
    real = os.path.realpath(path)
    info = tar.gettarinfo(real, arcname=(arcname or path).lstrip("/"))
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if mode is not None:
        info.mode = mode
    with open(real, "rb") as handle:
        tar.addfile(info, handle)


def _add_text(tar: tarfile.TarFile, path: str, text: str, mode: int = 0o644) -> None:
    data = text.encode()
    info = tarfile.TarInfo(path.lstrip("/"))
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, path: str, uid: int = 0, gid: int = 0, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(path.lstrip("/"))
    info.type, info.uid, info.gid, info.mode, info.mtime = tarfile.DIRTYPE, uid, gid, mode, 0
    tar.addfile(info)


def _add_link(tar: tarfile.TarFile, path: str, target: str) -> None:
    info = tarfile.TarInfo(path.lstrip("/"))
    info.type, info.linkname, info.mtime = tarfile.SYMTYPE, target, 0
    tar.addfile(info)


def build_rootfs(dest: Path) -> None:
    """Write rootfs.tar with numeric owners (the only way /data keeps its owner)."""
    files = set(BINARIES)
    for binary in BINARIES:
        files |= _libraries(binary)
    with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as tar:
        for directory in [
            "/bin",
            "/usr",
            "/usr/bin",
            "/usr/local",
            "/usr/local/bin",
            "/etc",
            "/lib",
            "/lib64",
            "/usr/lib",
            "/usr/lib/x86_64-linux-gnu",
            "/lib/x86_64-linux-gnu",
            "/proc",
            "/sys",
            "/dev",
        ]:
            _add_dir(tar, directory)
        _add_dir(tar, "/tmp", mode=0o1777)
        _add_dir(tar, "/data", uid=REDIS_UID, gid=REDIS_GID, mode=0o755)
        for path in sorted(files):
            _add_file(tar, path)
        _add_file(tar, "/bin/busybox", mode=0o755)
        for applet in APPLETS:
            _add_link(tar, f"/bin/{applet}", "busybox")
        # Debian's redis-server is a link to redis-check-rdb; the name picks the mode.
        _add_link(tar, "/usr/bin/redis-check-rdb", "redis-server")
        _add_text(tar, "/usr/local/bin/docker-entrypoint.sh", ENTRYPOINT, mode=0o755)
        redis_user = f"redis:x:{REDIS_UID}:{REDIS_GID}:redis:/data:/bin/sh"
        _add_text(tar, "/etc/passwd", f"root:x:0:0:root:/root:/bin/sh\n{redis_user}\n")
        _add_text(tar, "/etc/group", f"root:x:0:\nredis:x:{REDIS_GID}:\n")
        _add_text(tar, "/etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n")


def fingerprint() -> str:
    """Changes when the packaged binaries or this builder change: the rebuild trigger."""
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for path in [*BINARIES, "/bin/busybox"]:
        digest.update(Path(os.path.realpath(path)).read_bytes())
    return digest.hexdigest()[:16]


def build(client: docker.DockerClient | None = None, tag: str = TAG, force: bool = False) -> str:
    """Build the image unless one with the same fingerprint exists; returns the tag."""
    client = client or ensure_engine()
    _ensure_packages()
    stamp = fingerprint()
    if not force:
        try:
            if client.images.get(tag).labels.get("com.bizosaas.offline-fingerprint") == stamp:
                return tag
        except docker.errors.ImageNotFound:
            pass
    description = "Offline stand-in for redis:7-alpine: Debian redis-server 7.0"
    with tempfile.TemporaryDirectory() as tmp:
        build_rootfs(Path(tmp) / "rootfs.tar")
        (Path(tmp) / "Dockerfile").write_text(
            DOCKERFILE
            + f'LABEL com.bizosaas.offline-fingerprint="{stamp}" '
            + f'org.opencontainers.image.description="{description}"\n'
        )
        client.images.build(path=tmp, tag=tag, rm=True, forcerm=True)
    return tag
