"""A local stand-in for the official redis_exporter image, from Debian's package, for
machines that reach no registry (the tests deploy it; users get `oliver006/redis_exporter`).

Debian 12's `prometheus-redis-exporter` is oliver006's redis_exporter 1.45. Its .deb is
downloaded with an apt configuration of its own into the cache and only unpacked: it is
never installed on this host (its package would start a service there). The image is laid
out as the official one: the binary at /redis_exporter, user 59000, port 9121, nothing
else but the C library it links.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import docker

from bizosaas_redis.constants import EXPORTER_PORT, EXPORTER_UID
from bizosaas_redis_ops.deploy.docker_engine import ensure_engine
from bizosaas_redis_ops.images import rootfs
from bizosaas_redis_ops.images.rootfs import (
    CACHE,
    OfflineImageError,
    add_base,
    add_file,
    add_text,
    apt,
    build_unless_current,
    libraries,
)

PACKAGE = "prometheus-redis-exporter"
SUITE = "bookworm"
REPOSITORY = "localhost/redis-exporter-offline"
BINARY = "/redis_exporter"
DOCKERFILE = f"""FROM scratch
ADD rootfs.tar /
USER {EXPORTER_UID}:{EXPORTER_UID}
EXPOSE {EXPORTER_PORT}
ENTRYPOINT ["{BINARY}"]
"""
DESCRIPTION = "Offline stand-in for oliver006/redis_exporter: Debian 12 prometheus-redis-exporter"


def package_root() -> Path:
    """The unpacked package (downloaded once into the cache)."""
    home = CACHE / f"debian-{SUITE}"
    root = home / f"root-{PACKAGE}"
    if (root / ".complete").exists():
        return root
    apt(SUITE, "update", "-qq")
    debs = home / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    apt(SUITE, "download", PACKAGE, cwd=debs)
    deb = max(debs.glob(f"{PACKAGE}_*.deb"))
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir()
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    (root / ".complete").write_text(deb.name + "\n")
    return root


def _program(root: Path) -> Path:
    return root / "usr/bin" / PACKAGE


def build_rootfs(dest: Path, root: Path) -> None:
    """The binary and the libraries it links (from this host: the same Debian release)."""
    program = _program(root)
    needed = libraries(Path("/"), (str(program),))
    with tarfile.open(dest, "w", format=tarfile.GNU_FORMAT) as tar:
        add_base(tar, Path("/"), needed)
        add_file(tar, str(program), arcname=BINARY, mode=0o755)
        # Names on the Docker network resolve through Docker's DNS (glibc reads this).
        add_text(tar, "/etc/nsswitch.conf", "hosts: files dns\n")


def version(root: Path) -> str:
    """The exporter's own version, as its `-version` says it (1.45.0)."""
    out = subprocess.run([str(_program(root)), "-version"], capture_output=True, text=True).stdout
    found = re.search(r"(\d+\.\d+\.\d+)", out)
    if found is None:
        raise OfflineImageError(f"{PACKAGE} -version said {out[:80]!r}")
    return found.group(1)


def build(client: docker.DockerClient | None = None, force: bool = False) -> str:
    """Build the stand-in unless one with the same fingerprint exists; returns its tag,
    the exporter's exact version (`localhost/redis-exporter-offline:1.45.0`)."""
    client = client or ensure_engine()
    root = package_root()
    tag = f"{REPOSITORY}:{version(root)}"
    # This builder and the shared one: a change to either rebuilds.
    digest = hashlib.sha256(Path(__file__).read_bytes() + Path(rootfs.__file__).read_bytes())
    digest.update(_program(root).read_bytes())
    stamp = digest.hexdigest()[:16]
    build_unless_current(client, tag, stamp, DOCKERFILE, DESCRIPTION, lambda dest: build_rootfs(dest, root), force)
    return tag
