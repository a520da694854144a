"""Files for a container whose root filesystem is read-only: written onto its volume by a
second container that is created and never started (the "files container").

Why not the service container's own `uploads`: the docker provider extracts every upload
at `/`, and Docker refuses any extraction at `/` into a container with a read-only root,
even when the file's path is on a volume ("container rootfs is marked read-only"). A
container that never starts may have a writable root: no process ever runs in it. It
mounts the service's volume, so the uploads land there, and the service container mounts
the same volume.

Ownership: with an upload `owner`, Docker copies the archive "as the container's user",
which Docker 20.10 looks up by name on the host (`getent "999:1000"` fails). The files
container names no user (the image it runs is Redis's, whose official build has no USER),
so Docker keeps the tar entries' owner, 999:1000 for Redis, and the modes given.

The service container is replaced with its files container (`replace_with`), so that new
files always mean a new service container: Pulumi stops the service, rewrites the files
and starts it again, in that order (both are replaced delete-before-replace).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from bizosaas_redis.constants import LABEL_FILES_FOR, LABEL_STACK, REDIS_GID, REDIS_UID
from bizosaas_redis.redis_conf import ONLINE_CONFIG_PATH, USERS_PATH

NAME_SUFFIX = "-files"
# The files container of the settings applied without a restart (components/online.py).
ONLINE_SUFFIX = "-online"


@dataclass(frozen=True)
class File:
    path: str
    content: pulumi.Input[str]
    mode: str  # octal, as the provider takes it: "0600"
    uid: int
    gid: int


def files_container(
    name: str,
    container_name: str,
    stack: str,
    image_id: pulumi.Input[str],
    volume: docker.ContainerVolumeArgs,
    files: list[File],
    opts: pulumi.ResourceOptions,
    suffix: str = NAME_SUFFIX,
) -> docker.Container:
    """The never-started container that writes `files` onto `volume` for `container_name`
    (named `container_name` + `suffix`)."""
    return docker.Container(
        name,
        name=f"{container_name}{suffix}",
        image=image_id,
        # Never run; a command is still required of a container.
        command=["true"],
        start=False,
        must_run=False,
        network_mode="none",
        capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
        security_opts=["no-new-privileges:true"],
        volumes=[volume],
        labels=[
            docker.ContainerLabelArgs(label=LABEL_STACK, value=stack),
            docker.ContainerLabelArgs(label=LABEL_FILES_FOR, value=container_name),
        ],
        uploads=[
            docker.ContainerUploadArgs(
                file=f.path, content=f.content, permissions=f.mode, owner=str(f.uid), group=str(f.gid)
            )
            for f in files
        ],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(delete_before_replace=True)),
    )


def server_files(config: tuple[str, pulumi.Input[str]], script: tuple[str, str]) -> list[File]:
    """A Redis server's (node's or Sentinel's) config file, readable by Redis alone, and its
    start script."""
    (config_path, config_text), (script_path, script_text) = config, script
    return [
        File(config_path, config_text, "0600", REDIS_UID, REDIS_GID),
        File(script_path, script_text, "0500", REDIS_UID, REDIS_GID),
    ]


def online_files_container(
    name: str,
    container_name: str,
    stack: str,
    image_id: pulumi.Input[str],
    volume: docker.ContainerVolumeArgs,
    online_conf: str,
    users: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> docker.Container:
    """The files container of a server's or Sentinel's online.conf and users.acl (what it
    applies while it runs; components/online.py), named `container_name` + ONLINE_SUFFIX:
    replaced on a change of them, while the server depends on it and is not replaced with it."""
    online = File(ONLINE_CONFIG_PATH, online_conf, "0600", REDIS_UID, REDIS_GID)
    acl = File(USERS_PATH, pulumi.Output.secret(users), "0600", REDIS_UID, REDIS_GID)
    return files_container(name, container_name, stack, image_id, volume, [online, acl], opts, suffix=ONLINE_SUFFIX)


def served_by(
    files: docker.Container,
    after: list[pulumi.Resource] | None,
    parent: pulumi.Resource,
    hooks: pulumi.ResourceHookBinding | None = None,
) -> pulumi.ResourceOptions:
    """The options of a container whose files `files` writes: created after it (and after
    `after`, another instance's or node's container, healthy first: `wait`), replaced with
    it (new files: stopped first, started after), delete-before-replace (its name is
    fixed), and replaced on the edits the provider ignores after creation."""
    return pulumi.ResourceOptions(
        parent=parent,
        depends_on=[files, *(after or [])],
        replace_with=[files],
        hooks=hooks,
        delete_before_replace=True,
        replace_on_changes=["healthcheck", "tmpfs"],
    )
