"""Checks on a deployment: verify, smoke, monitor, and the generated alert rules and dashboard."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bizosaas_redis.settings import Settings, available_stacks, load_stack_file, project_dir

if TYPE_CHECKING:
    from bizosaas_redis_ops.deploy.outputs import Instance

from bizosaas_redis_ops.cli.root import CommandError, instance_option, json_option, main, stack_option, url_option


def verify_and_smoke(stack: str) -> None:
    from bizosaas_redis_ops.check import smoke as suite
    from bizosaas_redis_ops.check import verify as checks

    targets = _smoke_targets(stack)
    failed = False
    split = targets["durable"].role == "durable"
    for instance in ["cache", "durable"] if split else ["cache"]:
        code, found = checks.run(stack, instance=instance)
        click.echo(f"verify {instance}:\n" + (checks.table(found) if found else "could not run the checks"))
        failed = failed or code != 0
    _, results = suite.run_stack(targets)
    click.echo(suite.table(results))
    if failed or not all(r.passed for r in results):
        raise CommandError("the deployment is up but a check failed (above)")


def _smoke_targets(stack: str) -> dict[str, Any]:
    """The instance serving each use (cache, durable), as services reach them."""
    from bizosaas_redis_ops.check import smoke as suite
    from bizosaas_redis_ops.deploy import outputs as stack_outputs

    values = stack_outputs.load(stack)
    durable: Instance = "durable" if values.get("layout") == "split" else "cache"
    return {
        "cache": suite.Target.from_outputs(values),
        "durable": suite.Target.from_outputs(stack_outputs.for_instance(values, durable, stack)),
    }


# --- checks on a deployment ---------------------------------------------------------------


@main.command()
@stack_option(required=False, help="stack to verify")
@click.option("--container", help="container to verify; its stack and instance come from its labels")
@instance_option
@click.option("--junit-xml", type=click.Path(dir_okay=False, path_type=Path), help="also write a JUnit XML report")
@click.option("-v", "--verbose", is_flag=True, help="also show pytest's own report")
def verify(
    stack: str | None,
    container: str | None,
    instance: Instance,
    junit_xml: Path | None,
    verbose: bool,
) -> None:
    """Verify a deployed container with the testinfra checks: one row per check."""
    from bizosaas_redis_ops.check import verify as checks

    if bool(stack) == bool(container):
        raise click.UsageError("give exactly one of --stack and --container")
    code, found = checks.run(stack, container, quiet=not verbose, junit_xml=junit_xml, instance=instance)
    if found:
        click.echo(checks.table(found))
    if code != 0:
        raise CommandError("a check failed" if found else f"the checks could not run (pytest exit code {code})")


@main.command()
@stack_option(required=False, help="read the URL and databases from the stack's outputs")
@url_option
@click.option("--broker-db", type=click.IntRange(0), help="with --url: Celery broker database [default: 1]")
@click.option("--result-db", type=click.IntRange(0), help="with --url: Celery result database [default: 2]")
@click.option("--tls-ca", type=click.Path(exists=True, dir_okay=False), help="CA certificate of a rediss:// server")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="client certificate")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="client key")
@click.option("--junit", type=click.Path(dir_okay=False, path_type=Path), help="also write a JUnit XML report")
@click.option("--only", multiple=True, help="run only this scenario (repeatable)")
def smoke(
    stack: str | None,
    url: str | None,
    broker_db: int | None,
    result_db: int | None,
    tls_ca: str | None,
    tls_cert: str | None,
    tls_key: str | None,
    junit: Path | None,
    only: tuple[str, ...],
) -> None:
    """Post-deploy smoke suite: every consumer pattern against a deployed Redis.

    Safe in production: keys only under smoke:<run-id>: with a short TTL, all removed at
    the end (also on failure or Ctrl-C); never flushes, never scans. Exit 0 when every
    scenario passed, 1 when one failed, 2 when Redis is unusable.
    """
    from bizosaas_redis_ops.check import smoke as suite

    targets = _smoke_target(stack, url, broker_db, result_db)
    for one in targets.values():
        one.ssl_ca_certs, one.ssl_certfile, one.ssl_keyfile = tls_ca, tls_cert, tls_key
    unknown = set(only) - {name for name, _ in suite.SCENARIOS}
    if unknown:
        raise click.BadParameter(
            f"no scenario {', '.join(sorted(unknown))}; known: {', '.join(n for n, _ in suite.SCENARIOS)}",
            param_hint="--only",
        )
    # SIGTERM (a CI job cancelled) cleans up like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    # Each scenario against the instance serving it (one run where both are the same).
    runs, results = suite.run_stack(targets, only=set(only) or None)
    addresses = " and ".join(sorted({t.safe_address for t in targets.values()}))
    click.echo(f"smoke run {runs[0].run_id} against {addresses}")
    click.echo(suite.table(results))
    if junit:
        junit.write_text(suite.junit_xml(results))
    if not results or not all(r.passed for r in results):
        raise CommandError("a scenario failed")


def _smoke_target(stack: str | None, url: str | None, broker_db: int | None, result_db: int | None) -> dict[str, Any]:
    """The target of each use (cache, durable): a stack's instances, or the one URL for both."""
    from bizosaas_redis_ops.check import smoke as suite

    if stack and url and url != os.environ.get("REDIS_URL"):
        raise click.UsageError("give --stack or --url, not both")
    if stack:
        if broker_db is not None or result_db is not None:
            raise click.UsageError("--broker-db and --result-db go with --url; a stack's outputs name its databases")
        return _smoke_targets(stack)
    if not url:
        raise click.UsageError("give --stack, or --url / REDIS_URL")
    target = suite.Target.for_url(url, broker_db=broker_db, result_db=result_db)
    return {"cache": target, "durable": target}


@main.command()
@stack_option(required=False, help="a deployed stack (thresholds from its settings)")
@url_option
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 3600),
    default=1.0,
    show_default=True,
    help="seconds between the two INFO samples",
)
@json_option
@click.option("--watch", type=click.FloatRange(0.5), metavar="N", help="refresh every N seconds until Ctrl-C")
@instance_option
def monitor(
    stack: str | None,
    url: str | None,
    interval: float,
    as_json: bool,
    watch: float | None,
    instance: Instance,
) -> None:
    """Redis health against the stack's alert thresholds (the same as the Prometheus rules).

    Exit 0 all OK, 1 worst is WARN, 2 worst is CRIT or Redis unreachable.
    """
    import redis

    from bizosaas_redis_ops.check import monitor as health
    from bizosaas_redis_ops.check import smoke as suite
    from bizosaas_redis_ops.deploy import outputs as stack_outputs

    if stack and url and url != os.environ.get("REDIS_URL"):
        raise click.UsageError("give --stack or --url, not both")
    sentinel = None
    if stack:
        values = stack_outputs.load(stack, instance)
        settings = stack_outputs.settings(stack, instance, values)
        url = values["redis_admin_url"]
        sentinel = stack_outputs.sentinel_client(values)
    elif url:
        settings = Settings()
    else:
        raise click.UsageError("give --stack, or --url / REDIS_URL")
    target = suite.Target.for_url(url)
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5, socket_connect_timeout=5)
    while True:
        try:
            metrics = health.collect(client, settings, interval, sentinel)
        except (redis.RedisError, OSError) as exc:
            raise health.MonitorError(suite.explain(exc, target)) from None
        if watch:
            click.echo("\033[2J\033[H" + time.strftime("%Y-%m-%d %H:%M:%S") + " " + target.safe_address)
        click.echo(json.dumps(health.as_json(metrics), indent=2) if as_json else health.table(metrics))
        if not watch:
            sys.exit(health.exit_code(metrics))
        try:
            time.sleep(max(0.0, watch - interval))
        except KeyboardInterrupt:
            sys.exit(health.exit_code(metrics))


# --- generated files -------------------------------------------------------------------------


def _write_generated(
    stack: str | None, all_stacks: bool, output: Path | None, suffix: str, render: Callable[[Settings], str]
) -> None:
    """One stack's file to stdout (or `output`), or monitoring/<stack><suffix> for every stack."""
    if bool(stack) == all_stacks:
        raise click.UsageError("give exactly one of --stack and --all")
    if all_stacks:
        folder = project_dir() / "monitoring"
        folder.mkdir(exist_ok=True)
        for name in available_stacks():
            path = folder / f"{name}{suffix}"
            path.write_text(render(load_stack_file(name)))
            click.echo(path.relative_to(project_dir()))
        return
    assert stack is not None
    text = render(load_stack_file(stack))
    if output:
        output.write_text(text)
    else:
        click.echo(text, nl=False)


generated_options = [
    stack_option(required=False, help="one stack"),
    click.option("--all", "all_stacks", is_flag=True, help="write monitoring/<stack>.* for every stack"),
    click.option("--output", type=click.Path(dir_okay=False, path_type=Path), help="with --stack: write here"),
]


def with_generated_options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(generated_options):
        command = option(command)
    return command


@main.command("alert-rules")
@with_generated_options
@click.option("--scrape-config", is_flag=True, help="with --stack: Prometheus's scrape jobs for it instead")
def alert_rules(stack: str | None, all_stacks: bool, output: Path | None, scrape_config: bool) -> None:
    """Prometheus alerting rules for redis_exporter metrics, from the stack's thresholds."""
    from bizosaas_redis_ops.check import alerts

    if scrape_config:
        if not stack:
            raise click.UsageError("--scrape-config needs --stack")
        _write_generated(stack, False, output, "", alerts.render_scrape_configs)
        return
    _write_generated(stack, all_stacks, output, ".rules.yml", alerts.render)


@main.command()
@with_generated_options
def dashboard(stack: str | None, all_stacks: bool, output: Path | None) -> None:
    """A Grafana dashboard (JSON to import) of the stack's exporters, with its alert thresholds."""
    from bizosaas_redis_ops.check import dashboard as grafana

    _write_generated(stack, all_stacks, output, ".dashboard.json", grafana.render)
