"""Deploying with Pulumi: preview, up, destroy, outputs, doctor, and adopting the running service."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import click

from bizosaas_redis.answers import refusal
from bizosaas_redis.settings import NAMESPACE, Settings, load_stack_file, project_dir
from bizosaas_redis.settings import instance as settings_instance

if TYPE_CHECKING:
    import docker
    import redis

    from bizosaas_redis_ops.deploy import adopt as adopt_steps
    from bizosaas_redis_ops.deploy.outputs import Instance

from bizosaas_redis_ops.cli.check import verify_and_smoke
from bizosaas_redis_ops.cli.root import CommandError, instance_option, main, stack_option, yes_option
from bizosaas_redis_ops.deploy import rotation


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


@main.command()
@stack_option()
@click.option("--container", help="the running Redis container [default: the stack's redis:containerName]")
@click.option("--plan", is_flag=True, help="discover and compare only; change nothing")
@click.option("--write-config", is_flag=True, help="write the values that match what runs into Pulumi.<stack>.yaml")
@click.option(
    "--password-env",
    default="ADOPT_REDIS_PASSWORD",
    show_default=True,
    help="environment variable holding the running Redis's password, if it has one (never on the command line)",
)
@click.option(
    "--dest", type=click.Path(file_okay=False, path_type=Path), help="folder for backups [default: backups/<stack>/]"
)
@yes_option
def adopt(
    stack: str, container: str | None, plan: bool, write_config: bool, password_env: str, dest: Path | None, yes: bool
) -> None:
    """Take over the Redis that runs today (docker compose, Dokploy) with the stack's first `up`.

    Discovers the container, compares it with the stack and refuses before touching anything
    where they differ in what holds or reaches the data (volume, port, network, names);
    backs the data up and deploys everything of the stack but its Redis container; then
    pauses writes, records the keys, stops it and keeps it aside, runs `up`, and proves the
    stack's Redis holds the same keys (counts, sampled values and TTLs, verify, smoke, no
    drift). Any failure after the stop puts the old container and its data back."""
    from bizosaas_redis_ops.data import backup as data
    from bizosaas_redis_ops.deploy import adopt as steps
    from bizosaas_redis_ops.deploy import pulumi_stack

    engine, old, found, client, settings = _adoptable(stack, container, write_config, password_env)
    if plan:
        click.echo(f"adopt --plan: {found.name} can be adopted by stack {stack}; nothing was changed")
        return
    if not yes and not click.confirm(f"stop {found.name} and let stack {stack} take over its data?", default=False):
        raise CommandError("not confirmed; nothing was changed")

    def say(line: str) -> None:
        click.echo(line, err=True)

    # Prepared before the stop: the images, a checked backup, then everything of the stack
    # but its Redis container (the policy pack judges the whole program on its preview).
    steps.images_present(engine, settings)
    dest = dest or project_dir() / "backups" / stack
    made = data.backup(engine, client, settings, dest, container=found.name)
    data.verify_file(made.path, engine, settings.image)
    say(f"adopt: backup {made.path} ({made.size} bytes), readable by {settings.image}")
    steps.prepare(settings, found, say)

    def checks() -> None:
        verify_and_smoke(stack)
        pulumi_stack.run("preview", settings, expect_no_changes=True)

    done = steps.cut_over(engine, old, found, client, settings, dest, checks, say)
    loading = f", {done.load_s:.1f} s of it loading the data" if done.load_s is not None else ""
    click.echo(
        f"adopted {found.name} into stack {stack}: {done.keys} keys, the same sampled values and TTLs; Redis did "
        f"not answer for {done.outage_s:.1f} s{loading} (writes paused {done.paused_s:.1f} s)"
    )


class _Adoptable(NamedTuple):
    engine: docker.DockerClient
    old: Any  # the running container
    found: adopt_steps.Found
    client: redis.Redis
    settings: Settings


def _adoptable(stack: str, container: str | None, write_config: bool, password_env: str) -> _Adoptable:
    """Discover and compare; refuse (nothing changed) unless the stack would take over what
    runs. The engine, the old container, what was found, a client of it, the settings."""
    import os

    import docker
    import redis

    from bizosaas_redis_ops import tables
    from bizosaas_redis_ops.deploy import adopt as steps
    from bizosaas_redis_ops.deploy import outputs as stack_outputs
    from bizosaas_redis_ops.deploy import preflight
    from bizosaas_redis_ops.deploy.docker_engine import ensure_engine

    settings = load_stack_file(stack)
    if settings.topology != "standalone" or settings.layout != "single":
        raise CommandError(
            f"stack {stack} has topology {settings.topology}, layout {settings.layout}: adopt takes a standalone "
            "single stack (adopt with it, then change the topology or layout); nothing was changed"
        )
    if stack_outputs.running_instances(stack):
        raise CommandError(f"stack {stack} is deployed already: adopt is its first deployment; nothing was changed")
    engine = ensure_engine(start=False)
    name = container or settings.name
    try:
        old = engine.containers.get(name)
    except docker.errors.NotFound:
        raise CommandError(
            f"no container named {name} on this Docker host (--container); nothing was changed"
        ) from None
    found = steps.found_from(old.attrs)
    if found.status != "running":
        raise CommandError(f"{name} is {found.status}: start it, adopt reads its data first; nothing was changed")
    client = steps.connect(found, None, os.environ.get(password_env) or None)
    try:
        server = steps.ask_server(client)
    except (redis.RedisError, OSError) as error:
        where = "{host}:{port}".format(**client.get_connection_kwargs())
        hint = f"give its password in ${password_env}; nothing was changed"
        raise CommandError(refusal(f"the running Redis at {where}", error, hint)) from None
    found_here = steps.compare(found, server, settings)
    header = ["setting", f"stack {stack}", f"running ({name})", ""]
    click.echo(tables.render(header, [[r.setting, r.stack, r.running, r.verdict] for r in found_here.rows]))
    if found_here.refusals:
        raise CommandError(f"{found_here.refusals[0]}; nothing was changed")
    if found_here.fixes and write_config:
        settings = _write_config(stack, found_here.fixes)
        found_here = steps.compare(found, server, settings)
    if found_here.fixes:
        click.echo("\n".join(steps.config_line(stack, key, value) for key, value in found_here.fixes.items()))
        raise CommandError(
            f"{len(found_here.fixes)} settings of stack {stack} differ from what runs in what holds or reaches the "
            f"data ({', '.join(found_here.fixes)}): run the lines above or adopt --write-config; nothing was changed"
        )
    for line in [preflight.maxmemory_change(settings, server.used_memory), steps.auth_change(server, settings, stack)]:
        if line:
            click.echo(f"note: {line}", err=True)
    return _Adoptable(engine, old, found, client, settings)


def _write_config(stack: str, fixes: dict[str, str]) -> Settings:
    from bizosaas_redis_ops.deploy import pulumi_stack

    for key, value in fixes.items():
        pulumi_stack.set_config(stack, f"{NAMESPACE}:{key}", value)
    click.echo(f"wrote {', '.join(f'{NAMESPACE}:{k}' for k in fixes)} into Pulumi.{stack}.yaml", err=True)
    return load_stack_file(stack)


# --- password rotation ---------------------------------------------------------------------


@main.group()
def rotate() -> None:
    """Rotate a password with no client refused: start, move the consumers, finish (the
    replication and Sentinel passwords of topology sentinel: start, switch, finish)."""


def rotation_options(command: Callable[..., None]) -> Callable[..., None]:
    """What the `rotate` steps share."""
    for option in reversed(
        [
            stack_option(),
            click.option(
                "--user",
                type=click.Choice(rotation.USERS),
                default="app",
                show_default=True,
                help="the application user's password, the admin's, or topology sentinel's replication or "
                "Sentinel password",
            ),
            instance_option,
            yes_option,
            click.option("--no-verify", is_flag=True, help="skip verify and smoke after the update"),
        ]
    ):
        command = option(command)
    return command


@rotate.command("start")
@rotation_options
@click.pass_context
def rotate_start(
    ctx: click.Context, stack: str, user: rotation.User, instance: Instance, yes: bool, no_verify: bool
) -> None:
    """Keep the current password as the previous one (still accepted) and set a new one, then `up`.

    Every server accepts both passwords from then on; the consumer secrets
    (`outputs --show-secrets`) carry the new one. Move the consumers to it, then run
    `rotate finish`. The passwords go into Pulumi.<stack>.yaml as secrets. With
    authentication off, `--user app` starts turning it on: the consumer secrets carry a
    password, which the server accepts as it accepts none, until `finish`. `--user
    replication` or `sentinel` (topology sentinel) sets the next password instead, accepted
    beside the current one while the nodes and Sentinels keep using it: `rotate switch` next.
    """
    from bizosaas_redis_ops.deploy import outputs as stack_outputs

    settings = settings_instance(load_stack_file(stack), instance)
    step = rotation.start(settings, user, _secret_config(stack), stack_outputs.load(stack, instance))
    _apply_step(ctx, stack, step, "rotation started", yes, no_verify)
    if user in rotation.THREE_STEPS:
        click.echo(
            f"every node and Sentinel accepts the next {user} password beside the current one now; run "
            f"`bizosaas-redis rotate switch --stack {stack} --user {user} --instance {instance}`"
        )
        return
    accepted = "no password and the new one" if rotation.turns_auth_on(settings, user) else "both passwords"
    click.echo(
        f"{accepted} are accepted now; move the consumers to the new one, then run "
        f"`bizosaas-redis rotate finish --stack {stack} --user {user} --instance {instance}`"
    )


@rotate.command("switch")
@rotation_options
@click.pass_context
def rotate_switch(
    ctx: click.Context, stack: str, user: rotation.User, instance: Instance, yes: bool, no_verify: bool
) -> None:
    """The replication or Sentinel password: the next one becomes the one the nodes and
    Sentinels use (the nodes are replaced one after the other, with a handover, then the
    Sentinels), the current one stays accepted until `rotate finish`."""
    from bizosaas_redis_ops.deploy import outputs as stack_outputs

    settings = settings_instance(load_stack_file(stack), instance)
    step = rotation.switch(settings, user, _secret_config(stack), stack_outputs.load(stack, instance))
    _apply_step(ctx, stack, step, "rotation switching", yes, no_verify)
    click.echo(
        f"the nodes and Sentinels use the new {user} password; run "
        f"`bizosaas-redis rotate finish --stack {stack} --user {user} --instance {instance}`"
    )


@rotate.command("finish")
@rotation_options
@click.pass_context
def rotate_finish(
    ctx: click.Context, stack: str, user: rotation.User, instance: Instance, yes: bool, no_verify: bool
) -> None:
    """Remove the previous password (or, from none, turn authentication on), then `up`:
    clients still on the old one are refused from then on."""
    settings = settings_instance(load_stack_file(stack), instance)
    step = rotation.finish(settings, user, _secret_config(stack))
    _apply_step(ctx, stack, step, "rotation finishing", yes, no_verify)
    click.echo(f"rotation finished: only the new {user} password is accepted")


def _apply_step(ctx: click.Context, stack: str, step: rotation.Step, what: str, yes: bool, no_verify: bool) -> None:
    """Write a step's config changes into the stack file (secrets encrypted), then `up`."""
    from bizosaas_redis_ops.deploy import pulumi_stack

    for key, value in step.secrets.items():
        pulumi_stack.set_config(stack, key, value, secret=True)
    for key, value in step.settings.items():
        pulumi_stack.set_config(stack, key, value, path=True)
    for key in step.remove:
        pulumi_stack.remove_config(stack, key)
    click.echo(f"{what}: {', '.join(step.changed())} changed; applying it with `up`", err=True)
    ctx.invoke(up, stack=stack, yes=yes, no_verify=no_verify)


def _secret_config(stack: str) -> dict[str, str]:
    """The stack's secret config, namespaced keys (none before its first `up`)."""
    from pulumi import automation as auto

    from bizosaas_redis_ops.deploy import pulumi_stack

    try:
        given = pulumi_stack.secret_config(stack)
    except auto.StackNotFoundError:
        raise CommandError(f"stack {stack} has never been deployed: there is no password to rotate") from None
    return {f"{NAMESPACE}:{key}": value for key, value in given.items()}
