"""The benchmarks: `bizosaas-redis benchmark …`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from bizosaas_redis.settings import available_stacks, project_dir
from bizosaas_redis_ops.bench import NAME_PREFIX
from bizosaas_redis_ops.images import STAND_INS

if TYPE_CHECKING:
    pass

from bizosaas_redis_ops.cli.root import main, stack_option


@main.group()
def benchmark() -> None:
    """Numbers, not pass/fail: consumer paths side by side, cost against dataset size, smoke timings."""


def _record(name: str, conditions: str, figures: list[dict[str, object]]) -> None:
    """The benchmark's results file, when asked (BIZOSAAS_RESULTS_DIR: results/ of the
    checkout, committed; the docs render it)."""
    from bizosaas_redis_ops import results

    folder = results.requested()
    if folder is not None:
        # The checkout measured: the project's, or (a project folder of its own, as the
        # tests' sandboxes are) the one this code runs from.
        commit = results.commit_of(project_dir())
        if commit == results.UNKNOWN:
            commit = results.commit_of(Path(__file__).resolve().parent)
        measured = results.document(name, conditions, figures, commit)
        # On stderr: stdout is the table, which scripts read.
        click.echo(f"results: {results.write(folder, measured)}", err=True)


@benchmark.command("smoke")
@stack_option()
@click.option("--runs", type=click.IntRange(1), default=3, show_default=True, help="repetitions")
@click.option("--no-throughput", is_flag=True, help="skip redis-benchmark")
def benchmark_smoke(stack: str, runs: int, no_throughput: bool) -> None:
    """Smoke scenario timings and redis-benchmark throughput of a deployed stack (min / median / max).

    redis-benchmark runs only on stacks without a password (it takes one only on its
    command line, which process lists show). Writes keys: not for production. With
    BIZOSAAS_RESULTS_DIR, writes smoke-timings.json there.
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
    _record("smoke-timings", f"stack {stack} deployed, bizosaas-redis benchmark smoke", bench.figures(rows))


@benchmark.command("durable")
@stack_option()
@click.option("--writes", type=click.IntRange(10), default=2000, show_default=True, help="writes of each kind")
def benchmark_durable(stack: str, writes: int) -> None:
    """Cost of a durable write (confirmed by replicas, WAIT) against a plain one: p50 / p99 per write.

    Through the stack's REDIS_URL, as services connect; needs durableWriteReplicas (topology
    sentinel). Writes keys (removed afterwards): not for production. With
    BIZOSAAS_RESULTS_DIR, writes durable-writes.json there.
    """
    from bizosaas_redis_ops.bench import durable_writes as bench
    from bizosaas_redis_ops.deploy import outputs as stack_outputs

    found = stack_outputs.load(stack)
    # REDIS_URL serves the durable uses: the durable instance of a split stack.
    settings = stack_outputs.settings(stack, "durable" if found.get("layout") == "split" else "cache", found)
    assert settings.durable_write_replicas is not None
    rows = bench.measure(found, settings.durable_write_replicas, settings.durable_write_timeout_ms, writes)
    click.echo(bench.table(rows))
    _record("durable-writes", f"stack {stack}, {writes} writes of each kind through REDIS_URL", bench.figures(rows))


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
    container and the limit (a bare server on its unix socket and loopback) from the same
    image, runs redis-benchmark (cache, session and queue commands, pipelines 1 and 16)
    from a client container on each path, removes everything, and prints the tables, each
    path as a ratio to the limit and to the seed; the chart goes to --chart. With
    BIZOSAAS_RESULTS_DIR, writes consumer-paths.json there.
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
    conditions = (
        f"stack {stack}{_with(assignments)}, {image or 'its image'}; redis-benchmark, {requests} requests, "
        f"{runs} run(s) per command; each run's geometric mean over the 9 commands"
    )
    _record("consumer-paths", conditions, paths.figures(rows))


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
    With BIZOSAAS_RESULTS_DIR, writes growth.json there.
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
    _record(
        "growth", f"stack {stack}{_with(assignments)}, {image or 'its image'}; one run per size", growth.figures(found)
    )


@benchmark.command("deploy")
@image_option
@name_prefix_option
@click.option("--runs", type=click.IntRange(1), default=1, show_default=True, help="deployments of each stack")
def benchmark_deploy(image: str | None, name_prefix: str, runs: int) -> None:
    """How long `up`, `preview`, a no-change `up`, `refresh` and `destroy` take per stack.

    Deploys each stack file under <prefix>-<stack> names with the real Pulumi engine (from
    a project folder of its own, external networks made for the run), times each step and
    removes everything; prints one row per stack. With BIZOSAAS_RESULTS_DIR, writes
    deploy-times.json there.
    """
    from bizosaas_redis_ops.bench import deploy_times
    from bizosaas_redis_ops.deploy.docker_engine import ensure_engine

    engine = ensure_engine()
    found = [
        deploy_times.measure(engine, stack, image, name_prefix, lambda line: click.echo(f"  {line}", err=True))
        for _ in range(runs)
        for stack in available_stacks()
    ]
    click.echo(deploy_times.table(found))
    image_used = image or "each stack's image"
    _record("deploy-times", f"every stack file under test names, {image_used}", deploy_times.figures(found))


@benchmark.command("image")
@click.option(
    "--server",
    type=click.Choice(STAND_INS),
    multiple=True,
    help="which stand-ins [default: all three]",
)
@click.option("--runs", type=click.IntRange(1), default=3, show_default=True, help="builds of each")
def benchmark_image(server: tuple[str, ...], runs: int) -> None:
    """How long the offline stand-in images take to build, and their size.

    Rebuilds each (--force) from the Debian packages already downloaded into
    ~/.cache/bizosaas-redis: the build's own cost, not the download's. With
    BIZOSAAS_RESULTS_DIR, writes offline-images.json there.
    """
    from bizosaas_redis_ops import results
    from bizosaas_redis_ops.images import offline_image

    figures = []
    for name in server or STAND_INS:
        offline_image.build(server=name)  # its packages downloaded, outside the timing
        seconds, size = [], 0.0
        for _ in range(runs):
            started = time.monotonic()
            tag = offline_image.build(force=True, server=name)
            seconds.append(time.monotonic() - started)
            size = offline_image.size_mb(tag)
        figures += [
            results.figure(f"{name}: build", seconds),
            results.figure(f"{name}: image size", [size], "MB"),
        ]
        click.echo(f"{name}: built in {min(seconds):.1f}-{max(seconds):.1f} s, {size:.1f} MB")
    _record("offline-images", "packages already downloaded (~/.cache/bizosaas-redis)", figures)


def _with(assignments: tuple[str, ...]) -> str:
    return f" with {', '.join(assignments)}" if assignments else ""


def _sizes(value: str) -> list[int]:
    try:
        sizes = [int(part) for part in value.split(",")]
    except ValueError:
        sizes = []
    if not sizes or min(sizes) < 1:
        raise click.BadParameter(f"{value!r}: give sizes in MB, comma-separated positive integers (e.g. 100,500)")
    return sizes


# --- data: backup and restore --------------------------------------------------------------
