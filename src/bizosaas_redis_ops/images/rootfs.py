"""What the stand-in images are made of, for both builders (offline_image, exporter_image):
Debian packages fetched with an apt of their own, the shared libraries a binary needs,
tar entries with numeric owners, and a build that happens only when the fingerprint
changes."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker

from bizosaas_redis.errors import BizosaasRedisError

# Downloads and unpacked packages, outside the repository; they survive between runs.
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bizosaas-redis"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
LIBRARY_DIRS = ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu")
LOADER = "/lib64/ld-linux-x86-64.so.2"
# Where Debian 13 (merged /usr) keeps the loader that LOADER points to.
DEBIAN_LOADER = "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
# The label that says which builder and binaries made a stand-in: a rebuild when it differs.
FINGERPRINT_LABEL = "com.bizosaas.offline-fingerprint"


class OfflineImageError(BizosaasRedisError):
    pass


def apt(suite: str, *args: str, cwd: Path | None = None) -> str:
    """apt-get/apt-cache with a configuration of its own for `suite`: the host's sources,
    lists and package state are never read or changed."""
    home = CACHE / f"debian-{suite}"
    (home / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (home / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    sources = home / "sources.list"
    sources.write_text(f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {DEBIAN_MIRROR} {suite} main\n")
    options = [
        f"-oDir::Etc::sourcelist={sources}",
        "-oDir::Etc::sourceparts=-",
        f"-oDir::State::Lists={home / 'lists'}",
        f"-oDir::Cache={home / 'cache'}",
        "-oDir::State::status=/dev/null",
        "-oAPT::Sandbox::User=root",
    ]
    tool = "apt-cache" if args[0] in ("depends", "policy") else "apt-get"
    result = subprocess.run([tool, *options, *args], capture_output=True, text=True, cwd=cwd)
    if result.returncode != 0:
        raise OfflineImageError(f"{tool} {args[0]} for Debian {suite} failed: {result.stderr.strip()[-300:]}")
    return result.stdout


def _needed(path: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=True).stdout
    return [line.split("[", 1)[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line]


def libraries(root: Path, binaries: tuple[str, ...]) -> set[str]:
    """Every shared library the binaries need, transitively, as paths inside `root`."""
    found: set[str] = set()
    todo = [root / b.lstrip("/") for b in binaries]
    while todo:
        for name in _needed(todo.pop()):
            for directory in LIBRARY_DIRS:
                candidate = root / directory.lstrip("/") / name
                if candidate.exists():
                    inside = "/" + str(candidate.relative_to(root))
                    if inside not in found:
                        found.add(inside)
                        todo.append(candidate)
                    break
            else:
                raise OfflineImageError(f"{name} (needed by the server) is in none of {', '.join(LIBRARY_DIRS)}")
    host_style = root / LOADER.lstrip("/")
    loader = Path(os.path.realpath(host_style)) if host_style.exists() else root / DEBIAN_LOADER.lstrip("/")
    found.add("/" + str(loader.relative_to(root)))
    return found


def add_file(tar: tarfile.TarFile, path: str, arcname: str | None = None, mode: int | None = None) -> None:
    real = os.path.realpath(path)
    info = tar.gettarinfo(real, arcname=(arcname or path).lstrip("/"))
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if mode is not None:
        info.mode = mode
    with open(real, "rb") as handle:
        tar.addfile(info, handle)


def add_text(tar: tarfile.TarFile, path: str, text: str, mode: int = 0o644) -> None:
    data = text.encode()
    info = tarfile.TarInfo(path.lstrip("/"))
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def add_dir(tar: tarfile.TarFile, path: str, uid: int = 0, gid: int = 0, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(path.lstrip("/"))
    info.type, info.uid, info.gid, info.mode, info.mtime = tarfile.DIRTYPE, uid, gid, mode, 0
    tar.addfile(info)


def add_link(tar: tarfile.TarFile, path: str, target: str) -> None:
    info = tarfile.TarInfo(path.lstrip("/"))
    info.type, info.linkname, info.mtime = tarfile.SYMTYPE, target, 0
    tar.addfile(info)


BASE_DIRS = ("/etc", "/lib", "/lib64", "/usr", "/usr/lib", "/lib/x86_64-linux-gnu", "/proc", "/sys", "/dev")


def add_base(tar: tarfile.TarFile, root: Path, files: set[str], extra_dirs: tuple[str, ...] = ()) -> None:
    """What every stand-in holds: the base folders, /tmp, `files` (paths inside `root`:
    binaries and the libraries they need) and the loader where every binary looks for it."""
    for directory in sorted({*BASE_DIRS, *extra_dirs}, key=lambda d: (d.count("/"), d)):
        add_dir(tar, directory)
    add_dir(tar, "/tmp", mode=0o1777)
    for path in sorted(files):
        add_file(tar, str(root / path.lstrip("/")), arcname=path)
    loader = next(f for f in files if f.endswith("/ld-linux-x86-64.so.2"))
    if loader != LOADER:
        add_link(tar, LOADER, loader)


def build_unless_current(
    client: docker.DockerClient,
    tag: str,
    stamp: str,
    dockerfile: str,
    description: str,
    rootfs: Callable[[Path], None],
    force: bool = False,
) -> Any:
    """The image `tag` when it carries the fingerprint `stamp`; else built anew from the
    root filesystem tarball `rootfs` writes and `dockerfile`, labelled with both."""
    image = None
    if not force:
        with contextlib.suppress(docker.errors.ImageNotFound):
            image = client.images.get(tag)
    if image is not None and image.labels.get(FINGERPRINT_LABEL) == stamp:
        return image
    with tempfile.TemporaryDirectory() as tmp:
        rootfs(Path(tmp) / "rootfs.tar")
        (Path(tmp) / "Dockerfile").write_text(
            dockerfile + f'LABEL {FINGERPRINT_LABEL}="{stamp}" org.opencontainers.image.description="{description}"\n'
        )
        image, _ = client.images.build(path=tmp, tag=tag, rm=True, forcerm=True)
    return image
