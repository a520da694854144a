"""`bizosaas-redis`: every operation on the Redis stacks, one command with subcommands.

Exit codes: 0 success; 1 a check failed or an expected error (one line on stderr);
2 bad usage, or Redis unusable (smoke), or a CRIT metric (monitor); 130 interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings import Settings, available_stacks, find_project_dir, load_stack_file, project_dir
from bizosaas_redis_ops.bench import NAME_PREFIX

if TYPE_CHECKING:
    from bizosaas_redis_ops.deploy.outputs import Instance

F = TypeVar("F", bound=Callable[..., Any])


class CommandError(BizosaasRedisError):
    """A failure the command itself detects (bad combination of arguments, failed checks)."""


# --- shared options, declared once ---------------------------------------------------


def stack_option(
    required: bool = True, help: str = "stack name (Pulumi.<stack>.yaml)", default: str | None = None
) -> Callable[[F], F]:
    # Click treats an explicit default=None as a default given, so pass one only when there is one.
    defaults: dict[str, Any] = {"default": default, "show_default": True} if default else {"required": required}
    return click.option("--stack", type=click.Choice(available_stacks()), help=help, **defaults)


instance_option = click.option(
    "--instance",
    type=click.Choice(["cache", "durable"]),
    default="cache",
    show_default=True,
    help="with layout split: the cache instance or the durable one (broker, streams, sessions)",
)
json_option = click.option("--json", "as_json", is_flag=True, help="print JSON for machines")
yes_option = click.option("--yes", is_flag=True, help="do not ask before changing production")
url_option = click.option(
    "--url",
    envvar="REDIS_URL",
    help="redis[s]://user:password@host:port/db; default $REDIS_URL (prefer it: a command line shows in ps)",
)


def _one_line(exc: BaseException) -> str:
    """The message of a library error, as one line."""
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


class CliCommand(click.Command):
    """Turns every expected failure into one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        import docker.errors
        import redis

        name = ctx.command_path
        try:
            return super().invoke(ctx)
        except BizosaasRedisError as exc:
            _fail(name, str(exc), exc.exit_code)
        except redis.RedisError as exc:
            _fail(name, f"Redis refused: {_one_line(exc)}", 1)
        except docker.errors.DockerException as exc:
            _fail(name, f"Docker: {_one_line(exc)}", 1)
        except KeyboardInterrupt:
            _fail(name, "interrupted", 130)
        except Exception as exc:
            # The Automation API's errors carry the Pulumi CLI's own message.
            if type(exc).__module__.startswith("pulumi.automation"):
                _fail(name, f"pulumi failed: {_one_line(exc)}", 1)
            raise


class Cli(click.Group):
    command_class = CliCommand
    group_class = type  # subgroups are Cli too


def _fail(command: str, message: str, code: int) -> None:
    click.echo(f"{command}: {message}", err=True)
    sys.exit(code)


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main() -> None:
    """Deploy, verify, test, watch, back up and restore the BizOSaaS Redis stacks."""
    # `bizosaas-redis … | head` ends quietly, as command-line tools do.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)


# --- Pulumi: preview, up, destroy, outputs ------------------------------------------------


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
    for note in preflight.before_update(settings, running, client):
        click.echo(f"note: {note}", err=True)
    pulumi_stack.run("up", settings, yes=True)  # confirmed above
    if settings.layout == "split":
        from bizosaas_redis_ops.data import layout_move

        leftover = layout_move.leftover_note(stack_outputs.load(stack)["redis_admin_url"], settings)
        if leftover:
            click.echo(f"note: {leftover}", err=True)
    if not no_verify:
        _verify_and_smoke(stack)


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


def _verify_and_smoke(stack: str) -> None:
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
    code, found = checks.run(
        stack, container, quiet=not verbose, junit_xml=junit_xml, instance=instance
    )
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


def _smoke_target(
    stack: str | None, url: str | None, broker_db: int | None, result_db: int | None
) -> dict[str, Any]:
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


@main.group()
def benchmark() -> None:
    """Numbers, not pass/fail: consumer paths side by side, cost against dataset size, smoke timings."""


@benchmark.command("smoke")
@stack_option()
@click.option("--runs", type=click.IntRange(1), default=3, show_default=True, help="repetitions")
@click.option("--no-throughput", is_flag=True, help="skip redis-benchmark")
def benchmark_smoke(stack: str, runs: int, no_throughput: bool) -> None:
    """Smoke scenario timings and redis-benchmark throughput of a deployed stack (min / median / max).

    redis-benchmark runs only on stacks without a password (it takes one only on its
    command line, which process lists show). Writes keys: not for production.
    """
    from bizosaas_redis_ops.bench import smoke_timings as bench
    from bizosaas_redis_ops.check import smoke as suite
    from bizosaas_redis_ops.deploy import outputs as stack_outputs

    found = stack_outputs.load(stack)
    rows = bench.smoke_timings(suite.Target.from_outputs(found), runs)
    if not no_throughput:
        for pipeline in (1, 16):
            rows += bench.redis_benchmark(found["redis_url"], runs, pipeline=pipeline)
    click.echo(bench.table(rows))


@benchmark.command("durable")
@stack_option()
@click.option("--writes", type=click.IntRange(10), default=2000, show_default=True, help="writes of each kind")
def benchmark_durable(stack: str, writes: int) -> None:
    """Cost of a durable write (confirmed by replicas, WAIT) against a plain one: p50 / p99 per write.

    Through the stack's REDIS_URL, as services connect; needs durableWriteReplicas (topology
    sentinel). Writes keys (removed afterwards): not for production.
    """
    from bizosaas_redis_ops.bench import durable_writes as bench
    from bizosaas_redis_ops.deploy import outputs as stack_outputs

    found = stack_outputs.load(stack)
    # REDIS_URL serves the durable uses: the durable instance of a split stack.
    settings = stack_outputs.settings(stack, "durable" if found.get("layout") == "split" else "cache", found)
    assert settings.durable_write_replicas is not None
    rows = bench.measure(found, settings.durable_write_replicas, settings.durable_write_timeout_ms, writes)
    click.echo(bench.table(rows))


image_option = click.option("--image", help="the server image [default: the stack's]; e.g. the offline stand-in")
name_prefix_option = click.option(
    "--name-prefix",
    default=NAME_PREFIX,
    show_default=True,
    help="the benchmark's containers, volumes and networks are named <prefix>-*",
)


def lab_options(command: Callable[..., None]) -> Callable[..., None]:
    """What `benchmark paths` and `benchmark growth` share: the stack, image, settings and chart."""
    for option in reversed(
        [
            stack_option(default="staging"),
            image_option,
            click.option(
                "--set", "assignments", multiple=True, metavar="KEY=VALUE", help="override a setting; repeatable"
            ),
            name_prefix_option,
            click.option(
                "--chart",
                type=click.Path(dir_okay=False, path_type=Path),
                help="write the chart here (PNG) [default: benchmark-results/<command>.png]",
            ),
        ]
    ):
        command = option(command)
    return command


def _chart_path(chart: Path | None, name: str) -> Path:
    path = chart or project_dir() / "benchmark-results" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@benchmark.command("paths")
@lab_options
@click.option("--requests", type=click.IntRange(5000), default=50_000, show_default=True, help="per test")
@click.option("--runs", type=click.IntRange(1), default=1, show_default=True, help="per test; the median is kept")
def benchmark_paths(
    stack: str,
    image: str | None,
    assignments: tuple[str, ...],
    name_prefix: str,
    chart: Path | None,
    requests: int,
    runs: int,
) -> None:
    """Every consumer path of a disposable deployment beside the limit and the seed's container.

    Deploys the stack under bizosaas-bench-* names (socket on), starts the seed's compose
    container and a bare server on loopback from the same image, runs redis-benchmark
    (cache, session and queue commands, pipelines 1 and 16) from a client container on
    each path, removes everything, and prints the tables; the chart goes to --chart.
    """
    from bizosaas_redis_ops.bench import charts, paths
    from bizosaas_redis_ops.bench.lab import Lab
    from bizosaas_redis_ops.deploy.docker_engine import ensure_engine

    with Lab(ensure_engine(), stack, image, list(assignments), prefix=name_prefix) as lab:
        rows = paths.run(lab, requests, runs, progress=lambda line: click.echo(f"  {line}", err=True))
    click.echo(paths.detail_table(rows) + "\n")
    click.echo(paths.summary_table(rows) + "\n")
    click.echo(paths.goals_table(rows))
    click.echo(f"chart: {charts.paths_chart(rows, _chart_path(chart, 'paths'))}")


@benchmark.command("growth")
@lab_options
@click.option(
    "--sizes",
    default="100,500,1500",
    show_default=True,
    help="dataset sizes in MB, comma-separated",
    callback=lambda _ctx, _param, value: _sizes(value),
)
def benchmark_growth(
    stack: str, image: str | None, assignments: tuple[str, ...], name_prefix: str, chart: Path | None, sizes: list[int]
) -> None:
    """Restart, replacement, fork and AOF-rewrite costs against the dataset size.

    For each size: a fresh disposable deployment (bizosaas-bench-* names) filled with
    values of 256 B to 4 KB, then BGSAVE, an AOF rewrite under a write load (peak memory
    against the container limit, p99 of a probe), a restart and a replacement (time to the
    first answered command and to healthy), and the disk's read rate as the physical limit.
    """
    from bizosaas_redis_ops.bench import charts, growth
    from bizosaas_redis_ops.bench.lab import Lab
    from bizosaas_redis_ops.deploy.docker_engine import ensure_engine

    engine = ensure_engine()
    growth.check_sizes(Lab(engine, stack, image, list(assignments)).deployed_settings(), sizes)
    found = []
    for size in sizes:
        with Lab(engine, stack, image, list(assignments), prefix=name_prefix) as lab:
            found.append(growth.measure(lab, size, progress=lambda line: click.echo(f"  {line}", err=True)))
    click.echo(growth.table(found))
    click.echo(f"chart: {charts.growth_chart(found, _chart_path(chart, 'growth'))}")


@benchmark.command("deploy")
@image_option
@name_prefix_option
def benchmark_deploy(image: str | None, name_prefix: str) -> None:
    """How long `up`, `preview`, a no-change `up`, `refresh` and `destroy` take per stack.

    Deploys each stack file under <prefix>-<stack> names with the real Pulumi engine (from
    a project folder of its own, external networks made for the run), times each step and
    removes everything; prints one row per stack.
    """
    from bizosaas_redis_ops.bench import deploy_times
    from bizosaas_redis_ops.deploy.docker_engine import ensure_engine

    engine = ensure_engine()
    found = [
        deploy_times.measure(engine, stack, image, name_prefix, lambda line: click.echo(f"  {line}", err=True))
        for stack in available_stacks()
    ]
    click.echo(deploy_times.table(found))


def _sizes(value: str) -> list[int]:
    try:
        sizes = [int(part) for part in value.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise click.BadParameter(f"{value!r}: give sizes in MB, comma-separated positive integers (e.g. 100,500)")
    return sizes


# --- data: backup and restore --------------------------------------------------------------


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
    admin = redis.Redis.from_url(stack_outputs.load(stack, instance)["redis_admin_url"])
    dest = dest or project_dir() / "backups" / stack
    made = data.backup(ensure_engine(start=False), admin, settings, dest, keep=keep)
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
    client = ensure_engine(start=False)
    container = data.container_of(client, settings)
    if settings.environment == "production" and container.status == "running" and not yes:
        raise CommandError(
            f"{settings.name} is a running production stack; its current data would be moved aside "
            "and replaced: re-run with --yes to confirm"
        )
    aside = data.restore(client, settings, file, integrity_checked=True)
    click.echo(f"restored {file.name} into {settings.name}; the previous data is in {aside} on the volume")


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


@main.command()
@click.option("--check", is_flag=True, help="only check; exit 1 when stale")
def docs(check: bool) -> None:
    """Regenerate the README's configuration, policy and alert tables from the settings model and rules.

    Outside a project (no Pulumi.yaml here or above), print the configuration reference instead.
    """
    from bizosaas_redis_ops.docs import config_table, update_readme

    folder = find_project_dir()
    if folder is None:
        if check:
            raise CommandError("no project here (no Pulumi.yaml): nothing to check")
        click.echo(config_table())
        return
    fresh = update_readme(folder / "README.md", check=check)
    if check and not fresh:
        raise CommandError("README.md's generated tables are stale: run bizosaas-redis docs")
    click.echo("README.md's generated tables are up to date" if fresh else "README.md updated")


@main.command("offline-image")
@click.option(
    "--server",
    type=click.Choice(["redis-7.0", "redis-8.0", "valkey-8.1"]),
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


if __name__ == "__main__":
    main(prog_name=os.path.basename(sys.argv[0]))
