"""Back up a stack's Redis to an RDB file, and restore one.

Backup: BGSAVE, wait until LASTSAVE moves and the save succeeded, copy /data/dump.rdb out
of the container, write it with a SHA-256 beside it, keep the newest N.

Restore: verify the file (checksum, RDB header, the target image's redis-check-rdb) before
touching anything; stop the container; move the current data aside on the volume
(`/data/pre-restore-<time>/`, nothing is deleted); put the file where Redis loads it:
with AOF on, Redis 7 ignores dump.rdb, so the file becomes the base of a fresh multi-part
AOF; start the container and wait until it is healthy.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import docker
import redis

from bizosaas_redis import topology
from bizosaas_redis.constants import LABEL_PREFIX, REDIS_GID, REDIS_UID, REDIS_USER
from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.redis_conf import AOF_BASE, AOF_BASE_ONLY_MANIFEST, AOF_DIR, AOF_MANIFEST, DATA_DIR
from bizosaas_redis.settings import Settings
from bizosaas_redis_ops.deploy.docker_engine import run_to_completion, wait_healthy


class BackupError(BizosaasRedisError):
    pass


@dataclass
class Backup:
    path: Path
    sha256: str
    size: int


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def bgsave_and_wait(admin: redis.Redis, timeout: float = 300) -> int:
    """BGSAVE, then wait for a successful save newer than the last one; returns LASTSAVE."""
    before = int(admin.lastsave().timestamp())
    while int(time.time()) <= before:  # LASTSAVE has 1 s resolution
        time.sleep(0.05)
    try:
        admin.bgsave()
    except redis.ResponseError as exc:
        if "already in progress" not in str(exc):
            raise
        admin.bgsave(schedule=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = admin.info("persistence")
        last = int(admin.lastsave().timestamp())
        if not info["rdb_bgsave_in_progress"] and last > before:
            if info["rdb_last_bgsave_status"] != "ok":
                raise BackupError("BGSAVE failed: see the container's log (disk full? permissions?)")
            return last
        time.sleep(0.1)
    raise BackupError(f"BGSAVE did not finish within {timeout:.0f} s")


def copy_out(client: docker.DockerClient, container: str, path: str) -> bytes:
    stream, _ = client.api.get_archive(container, path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        member = tar.next()
        if member is None or not member.isfile():
            raise BackupError(f"{path} is not a file in {container}")
        handle = tar.extractfile(member)
        assert handle is not None
        return handle.read()


def engine_of(settings: Settings, container: str, local: docker.DockerClient) -> docker.DockerClient:
    """The Docker engine that runs `container`: with topology sentinel, its node's host."""
    for node in topology.nodes(settings) if settings.topology == "sentinel" else []:
        if node.container_name == container and node.host.url:
            return docker.DockerClient(base_url=node.host.url)
    return local


def backup(
    client: docker.DockerClient,
    admin: redis.Redis,
    settings: Settings,
    dest: Path,
    keep: int = 7,
    container: str | None = None,
) -> Backup:
    """BGSAVE on `admin` and copy the snapshot out of `container` (default the instance's
    own; with topology sentinel, the primary's, which `admin` must reach, on its engine)."""
    bgsave_and_wait(admin)
    data = copy_out(client, container or settings.name, f"{DATA_DIR}/dump.rdb")
    # A backup holds every session and token: only its owner may read it.
    dest.mkdir(mode=0o700, parents=True, exist_ok=True)
    dest.chmod(0o700)
    now = time.time()
    # Milliseconds: two backups in one second keep distinct names, in time order.
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
    path = dest / f"{settings.instance_id}-{stamp}.rdb"
    write_private(path, data)
    digest = hashlib.sha256(data).hexdigest()
    write_private(Path(f"{path}.sha256"), f"{digest}  {path.name}\n".encode())  # sha256sum -c format
    prune(dest, settings.instance_id, keep)
    return Backup(path, digest, len(data))


def write_private(path: Path, data: bytes) -> None:
    """Created 0600 from the start: never readable by others, not even for a moment."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


# The kinds of backup file a folder may hold: the snapshot (with its .sha256 beside it) and
# its encrypted copy (`age -o <file>.age <file>`, docs/how-to/backup-and-restore.md).
KINDS = (".rdb", ".rdb.age")


def prune(dest: Path, instance_id: str, keep: int) -> list[Path]:
    """The newest `keep` of each kind stay; the rest (and their .sha256) go."""
    removed: list[Path] = []
    for kind in KINDS:
        # The time stamp starts with a digit: production-* must not take production-durable-*.
        backups = sorted(p for p in dest.glob(f"{instance_id}-[0-9]*{kind}") if p.name.endswith(kind))
        removed += backups[: max(0, len(backups) - keep)]
    for path in removed:
        path.unlink()
        Path(f"{path}.sha256").unlink(missing_ok=True)
    return removed


def verify_file(path: Path, client: docker.DockerClient | None = None, image: str | None = None) -> str:
    """Refuse a file that is not the backup it claims to be; returns its SHA-256.

    With an image, the file is checked by that image's own redis-check-rdb (in a
    throwaway container, no network, read-only): a checker older than the server that
    wrote the file refuses formats it does not know (Redis 7.0's stops at RDB 10, 7.4
    and 8 write 12). Without one, only the checksum and header are checked here."""
    if not path.is_file():
        raise BackupError(f"{path} does not exist")
    checksum_file = Path(f"{path}.sha256")
    if not checksum_file.is_file():
        raise BackupError(f"{checksum_file} is missing: cannot tell whether {path.name} is intact")
    expected = checksum_file.read_text().split()[0]
    actual = sha256_of(path)
    if actual != expected:
        raise BackupError(f"{path.name} is corrupted: SHA-256 {actual[:12]}… does not match {expected[:12]}…")
    with path.open("rb") as handle:
        if handle.read(5) != b"REDIS":
            raise BackupError(f"{path.name} is not an RDB file")
    if client is not None and image is not None:
        _check_file_in_image(client, image, path)
    return actual


def _check_file_in_image(client: docker.DockerClient, image: str, path: Path) -> None:
    output = _check_in_image(client, image, path)
    if "RDB looks OK" not in output:
        last = (output.strip().splitlines() or ["no output"])[-1]
        raise BackupError(f"{path.name} fails redis-check-rdb of {image}: {last}")


def _check_in_image(client: docker.DockerClient, image: str, path: Path) -> str:
    """redis-check-rdb of `image` on the file, in a throwaway container with no network,
    as Redis's user; the file goes in through the engine's API (it may be remote)."""
    with _as_archive(path, "check/backup.rdb") as archive:
        _code, output = run_to_completion(
            client,
            image,
            ["/check/backup.rdb"],
            timeout=120,
            upload=archive,
            entrypoint=["redis-check-rdb"],
            user=REDIS_USER,
            network_mode="none",
        )
    return output


@contextlib.contextmanager
def _as_archive(path: Path, name: str) -> Iterator[BinaryIO]:
    """The backup as a tar stream holding `name` (and its folder), Redis's and private:
    spooled through a temporary file, never whole in memory."""
    with tempfile.TemporaryFile() as spool:
        with tarfile.open(fileobj=spool, mode="w") as tar:
            for folder in Path(name).parents[:-1][::-1]:
                entry = tarfile.TarInfo(str(folder))
                entry.type, entry.mode, entry.uid, entry.gid = tarfile.DIRTYPE, 0o700, REDIS_UID, REDIS_GID
                tar.addfile(entry)
            info = tar.gettarinfo(str(path), arcname=name)
            info.uid, info.gid, info.mode = REDIS_UID, REDIS_GID, 0o600
            with path.open("rb") as handle:
                tar.addfile(info, handle)
        spool.seek(0)
        yield spool


def _volume_of(attrs: dict) -> str:
    for mount in attrs["Mounts"]:
        if mount["Destination"] == DATA_DIR and mount["Type"] == "volume":
            return mount["Name"]
    raise BackupError(f"{attrs['Name'].lstrip('/')} has no volume at {DATA_DIR}")


def container_of(client: docker.DockerClient, name: str) -> Any:
    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        raise BackupError(f"container {name} does not exist: deploy the stack first") from None


def _move_aside(folder: str) -> str:
    """Shell, run in the data folder: the data files into `folder` (made here); nothing deleted."""
    return f"mkdir {folder}; for f in dump.rdb {AOF_DIR}; do if [ -e $f ]; then mv $f {folder}/; fi; done"


def _place_command(aof: bool) -> str:
    """Shell that installs /data/.restore.rdb as the file Redis loads (the AOF base when AOF is on)."""
    if aof:
        return (
            f"mkdir {AOF_DIR} && mv .restore.rdb {AOF_DIR}/{AOF_BASE} && "
            f"printf '{AOF_BASE_ONLY_MANIFEST}\\n' > {AOF_DIR}/{AOF_MANIFEST}"
        )
    return "mv .restore.rdb dump.rdb"


def _put_backup(helper: Any, path: Path) -> None:
    """The backup at /data/.restore.rdb, Redis's and private."""
    with _as_archive(path, ".restore.rdb") as archive:
        helper.put_archive(DATA_DIR, archive)


def _run_helper(
    client: docker.DockerClient, image: str, volume: str, script: str, path: Path | None, stack: str
) -> None:
    """Copy the backup (if any) onto the volume and run `script` there, in a throwaway container."""
    helper = client.containers.create(
        image,
        entrypoint=["/bin/sh", "-c", script],
        user=REDIS_USER,
        network_mode="none",
        volumes={volume: {"bind": DATA_DIR, "mode": "rw"}},
        labels={"com.bizosaas.restore": stack},
    )
    try:
        if path is not None:
            _put_backup(helper, path)
        helper.start()
        status = helper.wait(timeout=120)
        if status.get("StatusCode") != 0:
            logs = helper.logs().decode(errors="replace").strip().splitlines()
            raise BackupError(f"restore failed: {logs[-1] if logs else 'the helper container failed'}")
    finally:
        helper.remove(force=True, v=True)


def restore(
    client: docker.DockerClient,
    settings: Settings,
    path: Path,
    wait_timeout: float = 120,
    integrity_checked: bool = False,
    name: str | None = None,
) -> str:
    """Restore `path` into the instance's container (or `name`); returns the folder the old
    data went to. `integrity_checked`: the caller ran verify_file(path) already (a large
    file is hashed once)."""
    name = name or settings.name
    container = client.containers.get(name)
    attrs = container.attrs
    image = container.image
    image_name = str((image.tags[0] if image.tags else image.id) if image is not None else attrs["Config"]["Image"])
    if not integrity_checked:
        verify_file(path)
    _check_file_in_image(client, image_name, path)
    volume = _volume_of(attrs)
    aof = attrs["Config"]["Labels"].get(f"{LABEL_PREFIX}appendonly", "yes" if settings.appendonly else "no")
    container.stop(timeout=settings.stop_grace_period)
    try:
        return place(client, attrs["Image"], volume, path, aof == "yes", "pre-restore", settings.stack)
    finally:
        # Whatever happened, Redis runs again: on the restored data, or on its own.
        container.start()
        wait_healthy(client, name, wait_timeout)


def place(client: docker.DockerClient, image: str, volume: str, path: Path, aof: bool, why: str, stack: str) -> str:
    """`path` becomes the data Redis loads from `volume` (the AOF base when `aof`), with no
    container using it; the data there goes into `/data/<why>-<time>` (nothing deleted),
    and back in place if placing fails. Returns that folder."""
    aside = f"{why}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    script = (
        f"set -e; cd {DATA_DIR}; {_move_aside(aside)}; "
        f"if ! ( {_place_command(aof)} ); then "
        f"rm -rf dump.rdb {AOF_DIR} .restore.rdb; mv {aside}/* . 2>/dev/null || true; rmdir {aside}; "
        "echo 'placing the backup failed; the previous data is back in place' >&2; exit 3; fi"
    )
    _run_helper(client, image, volume, script, path, stack)
    return f"{DATA_DIR}/{aside}"


def restore_topology(
    local: docker.DockerClient, settings: Settings, primary: str, path: Path, wait_timeout: float = 120
) -> str:
    """Topology sentinel: restore `path` into the primary's container with no second history.

    The replicas stop first, so that Sentinel has no node to promote while the primary is
    down; the primary is restored; each replica's data goes aside on its volume (as the
    primary's does), and it starts empty and resyncs in full from the restored primary."""
    engines = {n.container_name: engine_of(settings, n.container_name, local) for n in topology.nodes(settings)}
    replicas = [name for name in engines if name != primary]
    stopped: list[str] = []
    try:
        for name in replicas:
            engines[name].containers.get(name).stop(timeout=settings.stop_grace_period)
            stopped.append(name)
        aside = restore(
            engines[primary], settings, path, wait_timeout=wait_timeout, integrity_checked=True, name=primary
        )
        script = f"set -e; cd {DATA_DIR}; {_move_aside(Path(aside).name)}"
        for name in replicas:
            attrs = engines[name].containers.get(name).attrs
            _run_helper(engines[name], attrs["Image"], _volume_of(attrs), script, None, settings.stack)
    finally:
        for name in stopped:
            engines[name].containers.get(name).start()
            wait_healthy(engines[name], name, wait_timeout)
    return aside
