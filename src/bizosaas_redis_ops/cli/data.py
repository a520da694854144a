"""The data: backup, restore, layout-move."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from bizosaas_redis.settings import project_dir

if TYPE_CHECKING:
    from bizosaas_redis_ops.deploy.outputs import Instance

from bizosaas_redis_ops.cli.root import CommandError, instance_option, main, stack_option, yes_option


@main.command()
@stack_option()
@click.option(
    "--dest", type=click.Path(file_okay=False, path_type=Path), help="folder for backups [default: backups/<stack>/]"
)
@click.option("--keep", type=click.IntRange(1), default=7, show_default=True, help="backups of this instance to keep")
@instance_option
def backup(stack: str, dest: Path | None, keep: int, instance: Instance) -> None:
    """BGSAVE, wait, copy dump.rdb out with its SHA-256; keep the newest --keep backups."""
    import redis

    from bizosaas_redis_ops.data import backup as data
    from bizosaas_redis_ops.deploy import outputs as stack_outputs
    from bizosaas_redis_ops.deploy.docker_engine import ensure_engine

    settings = stack_outputs.settings(stack, instance)
    # With topology sentinel, the outputs follow the primary: its URL, its container.
    values = stack_outputs.load(stack, instance)
    admin = redis.Redis.from_url(values["redis_admin_url"])
    engine = data.engine_of(settings, values["container_name"], ensure_engine(start=False))
    dest = dest or project_dir() / "backups" / stack
    made = data.backup(engine, admin, settings, dest, keep=keep, container=values["container_name"])
    click.echo(f"{made.path}  {made.size} bytes  sha256 {made.sha256}")


@main.command()
@stack_option()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@yes_option
@instance_option
def restore(stack: str, file: Path, yes: bool, instance: Instance) -> None:
    """Restore FILE (made by backup; its .sha256 beside it) into the stack's container.

    The file is checked first, by the target image's own redis-check-rdb; the current
    data is moved aside on the volume, not deleted.
    """
    from bizosaas_redis_ops.data import backup as data
    from bizosaas_redis_ops.deploy import outputs as stack_outputs
    from bizosaas_redis_ops.deploy.docker_engine import ensure_engine

    data.verify_file(file)  # checksum and header: a bad file is refused before anything else
    settings = stack_outputs.settings(stack, instance)
    local = ensure_engine(start=False)
    name = stack_outputs.load(stack, instance)["container_name"]  # the primary's, with topology sentinel
    container = data.container_of(data.engine_of(settings, name, local), name)
    if settings.environment == "production" and container.status == "running" and not yes:
        raise CommandError(
            f"{name} is a running production stack; its current data would be moved aside "
            "and replaced: re-run with --yes to confirm"
        )
    if settings.topology == "sentinel":
        aside = data.restore_topology(local, settings, name, file)
        click.echo(f"restored {file.name} into the primary {name}; the replicas resynced from it")
    else:
        aside = data.restore(local, settings, file, integrity_checked=True)
    click.echo(f"restored {file.name} into {name}; the previous data is in {aside} on each volume")


@main.command("layout-move")
@stack_option()
@click.option(
    "--pattern",
    "patterns",
    multiple=True,
    metavar="GLOB",
    help="key names in the cache database that are services' durable data (repeatable) "
    "[default: the consumer library's *session:* and *jwt-revoked:*]",
)
@click.option("--dry-run", is_flag=True, help="only count what would move")
def layout_move(stack: str, patterns: tuple[str, ...], dry_run: bool) -> None:
    """After switching a stack to layout split: move the broker and result databases, streams,
    sessions and JWT blacklist entries from the cache instance to the durable one.

    Stop producers and Celery workers first. Each key keeps its TTL; a key that already
    exists on the durable instance is not overwritten (reported, left on the cache).
    """
    from bizosaas_redis_ops.data import layout_move as mover
    from bizosaas_redis_ops.deploy import outputs as stack_outputs

    settings = stack_outputs.settings(stack, "durable")
    cache = stack_outputs.load(stack)["redis_admin_url"]
    durable = stack_outputs.load(stack, "durable")["redis_admin_url"]
    done = mover.move(cache, durable, settings, patterns or mover.DEFAULT_PATTERNS, dry_run=dry_run)
    verb = "would move" if dry_run else "moved"
    for db in done.found:
        click.echo(f"db {db}: {done.found[db]} found, {verb} {done.found[db] if dry_run else done.moved[db]}")
    for db, key in done.conflicts:
        click.echo(f"db {db}: {key!r} exists on the durable instance: left on the cache", err=True)
    if done.conflicts:
        raise CommandError(f"{len(done.conflicts)} keys exist on both instances (above): resolve them and re-run")
