"""Deploying with Pulumi: preview, up, destroy, outputs, doctor."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from bizosaas_redis.settings import load_stack_file

if TYPE_CHECKING:
    pass

from bizosaas_redis_ops.cli.check import verify_and_smoke
from bizosaas_redis_ops.cli.root import CommandError, main, stack_option, yes_option


@main.command()
@stack_option()
@click.option("--expect-no-changes", is_flag=True, help="fail when the preview finds any change (drift check)")
def preview(stack: str, expect_no_changes: bool) -> None:
    """pulumi preview with the policy pack (policies/config/<stack>.json)."""
    from bizosaas_redis_ops.deploy import pulumi_stack

    pulumi_stack.run("preview", load_stack_file(stack), expect_no_changes=expect_no_changes)


@main.command()
@stack_option()
@yes_option
@click.option("--no-verify", is_flag=True, help="skip verify and smoke after the update")
def up(stack: str, yes: bool, no_verify: bool) -> None:
    """pulumi up with the policy pack, then verify and smoke (production asks first).

    Before anything changes, the running data is checked against the new settings
    (maxmemory, RDB format, port): a change that would make it unusable is refused."""
    from bizosaas_redis_ops.deploy import outputs as stack_outputs
    from bizosaas_redis_ops.deploy import preflight, pulumi_stack
    from bizosaas_redis_ops.deploy.docker_engine import EngineError, ensure_engine
    from bizosaas_redis_ops.images import offline_image

    settings = load_stack_file(stack)
    pulumi_stack.confirm_production(settings, "up", yes, sys.stdin.isatty())
    running = stack_outputs.running_instances(stack)
    try:
        client = ensure_engine(start=False)
    except EngineError:
        client = None  # no engine here (a remote host): those checks are the engine's at `pulumi up`
    stand_in = offline_image.dev_fallback(settings, client) if client is not None else None
    if stand_in is not None:
        pulumi_stack.set_config(stack, "redis:image", stand_in)
        click.echo(
            f"note: redis:image = {settings.image} cannot be pulled here (no registry answers): the dev stack now "
            f"runs {stand_in}, built from Debian's packages, set in Pulumi.{stack}.yaml "
            f"(`pulumi config rm redis:image --stack {stack}` goes back to the stack's default)",
            err=True,
        )
        settings = load_stack_file(stack)
    # A sentinel stack's running servers are asked whether they accept the credentials set now.
    sentinel = any(found.get("topology") == "sentinel" for found in running.values())
    given = pulumi_stack.secret_config(stack) if sentinel else {}
    for note in preflight.before_update(settings, running, client, given):
        click.echo(f"note: {note}", err=True)
    pulumi_stack.run("up", settings, yes=True)  # confirmed above
    if settings.layout == "split":
        from bizosaas_redis_ops.data import layout_move

        leftover = layout_move.leftover_note(stack_outputs.load(stack)["redis_admin_url"], settings)
        if leftover:
            click.echo(f"note: {leftover}", err=True)
    if not no_verify:
        verify_and_smoke(stack)


@main.command()
@stack_option()
@yes_option
def destroy(stack: str, yes: bool) -> None:
    """pulumi destroy (production asks first); the data volume is retained per retainDataOnDestroy."""
    from bizosaas_redis_ops.deploy import pulumi_stack

    pulumi_stack.run("destroy", load_stack_file(stack), yes=yes)


@main.command()
@stack_option()
@click.option("--show-secrets", is_flag=True, help="print secrets in clear")
def outputs(stack: str, show_secrets: bool) -> None:
    """The stack outputs as JSON (secrets masked unless --show-secrets)."""
    from bizosaas_redis_ops.deploy import outputs as stack_outputs

    click.echo(json.dumps(stack_outputs.show(stack, show_secrets), indent=2))


@main.command()
@stack_option()
def doctor(stack: str) -> None:
    """Host prerequisites: Docker, overcommit, huge pages, disk, network, TLS files, Pulumi."""
    from bizosaas_redis_ops.deploy import doctor as host

    checks = host.doctor(load_stack_file(stack))
    click.echo(host.doctor_table(checks))
    if any(c.status == "FAIL" for c in checks):
        raise CommandError("a prerequisite is missing (FAIL above)")
