"""The project's upkeep: the documents' generated blocks, the offline stand-in image."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from bizosaas_redis.settings import find_project_dir

if TYPE_CHECKING:
    pass

from bizosaas_redis_ops.cli.root import CommandError, main
from bizosaas_redis_ops.images import STAND_INS


@main.command()
@click.option("--check", is_flag=True, help="only check; exit 1 when stale")
def docs(check: bool) -> None:
    """Regenerate the documents' generated blocks (README.md, docs/): the references from the
    settings model, rules and commands, the measured tables from results/.

    Outside a project (no Pulumi.yaml here or above), print the configuration reference instead.
    """
    from bizosaas_redis_ops.docs import config_table, update_docs

    folder = find_project_dir()
    if folder is None:
        if check:
            raise CommandError("no project here (no Pulumi.yaml): nothing to check")
        click.echo(config_table())
        return
    stale = [str(path.relative_to(folder)) for path in update_docs(folder, check=check)]
    if check and stale:
        raise CommandError(f"generated blocks are stale in {', '.join(stale)}: run bizosaas-redis docs")
    click.echo(f"updated {', '.join(stale)}" if stale else "every generated block is up to date")


@main.command("offline-image")
@click.option(
    "--server",
    type=click.Choice(STAND_INS),
    default="redis-7.0",
    show_default=True,
    help="which server: Debian 12's Redis 7.0, Debian 13's Redis 8.0 or Valkey 8.1",
)
@click.option("--tag", help="image tag [default: the stand-in's own, e.g. localhost/redis-offline:7.0]")
@click.option("--force", is_flag=True, help="rebuild even when up to date")
def offline_image(server: str, tag: str | None, force: bool) -> None:
    """Build a stand-in for the official image from Debian's packages (no registry needed).

    The tag says what it is; it is printed last, so `--image $(bizosaas-redis offline-image | tail -1)` works.
    """
    from bizosaas_redis_ops.images import offline_image as builder

    click.echo(builder.build(tag=tag, force=force, server=server))
