"""Every consumer path side by side: requests/s and latency as a ratio to the limit (a
bare redis-server on its best path, its unix socket) and to the seed's compose container
(on the Docker network, as its consumers reach it today).

One run, one server version (the deployment's image everywhere), one client binary.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

import docker
import redis

from bizosaas_redis import redis_conf
from bizosaas_redis_ops import results, tables
from bizosaas_redis_ops.bench import runner
from bizosaas_redis_ops.bench.lab import Lab
from bizosaas_redis_ops.bench.runner import Client, Measured

PIPELINES = (1, 16)
LIMIT = "limit: bare redis-server"
LIMIT_PATH = "unix socket"
SEED = "seed: compose container"
SEED_PATH = "network"
DEPLOYMENT = "this deployment"
DEPLOYMENT_BARE = "this deployment, persistence off"


@dataclass(frozen=True)
class Row:
    target: str
    path: str
    workload: str
    command: str
    pipeline: int
    measured: Measured  # the median run by requests/s
    ratio: float  # requests/s against the limit's, same command and pipeline
    samples: tuple[float, ...] = ()  # requests/s of every run


@dataclass(frozen=True)
class Target:
    name: str
    path: str
    client: Client
    auth: tuple[str, str] | None
    prepare: Callable[[], redis.Redis]  # a client that may create the stream group


def _stream_group(client: redis.Redis) -> None:
    client.delete("bench:events", "bench:queue")
    client.xgroup_create("bench:events", "bench", id="$", mkstream=True)


def measure(
    engine: docker.DockerClient,
    image: str,
    target: Target,
    requests: int,
    runs: int,
    progress: Callable[[str], None],
) -> list[tuple[str, str, int, list[Measured]]]:
    found = []
    for pipeline in PIPELINES:
        for workload, commands in runner.WORKLOADS.items():
            _stream_group(target.prepare())
            for label, command in commands:
                progress(f"{target.name} via {target.path}: {label} P{pipeline}")
                samples = [
                    runner.run(engine, image, target.client, command, requests, pipeline, target.auth)
                    for _ in range(runs)
                ]
                found.append((workload, label, pipeline, samples))
    return found


def run(lab: Lab, requests: int, runs: int = 1, progress: Callable[[str], None] = lambda _: None) -> list[Row]:
    """Deploy, start the seed and the limit, measure every path; the lab is the caller's to close."""
    lab.deploy()
    image = lab.deployment_image()
    settings = lab.deployed_settings()
    admin = lab.admin()
    limit_port = lab.start_limit(
        [
            "--maxmemory",
            str(settings.maxmemory),
            "--maxmemory-policy",
            settings.maxmemory_policy,
            "--save",
            "",
            "--appendonly",
            "no",
        ]
    )
    seed_port = lab.start_seed()
    socket_client = Client("none", socket_volume=settings.socket_volume_name, socket_path=redis_conf.SOCKET_PATH)
    measured: list[tuple[str, str, str, str, int, list[Measured]]] = []

    def add(target: Target) -> None:
        for workload, label, pipeline, samples in measure(lab.engine, image, target, requests, runs, progress):
            measured.append((target.name, target.path, workload, label, pipeline, samples))

    limit = lambda: redis.Redis(port=limit_port)  # noqa: E731
    limit_socket = Client("none", socket_volume=lab.limit_socket_volume, socket_path=redis_conf.SOCKET_PATH)
    add(Target(LIMIT, LIMIT_PATH, limit_socket, None, limit))
    add(Target(LIMIT, "loopback", Client("host", port=limit_port), None, limit))
    seed = lambda: redis.Redis(port=seed_port)  # noqa: E731
    add(Target(SEED, SEED_PATH, Client(lab.network, host=lab.seed_name, port=6379), None, seed))
    add(Target(SEED, "published port", Client("host", port=seed_port), None, seed))
    deployment_paths = [
        ("network", Client(lab.network, host=lab.container_name, port=redis_conf.CONTAINER_PORT)),
        ("published port", Client("host", port=lab.port)),
        ("unix socket", socket_client),
    ]
    with lab.disposable_user() as user:
        for path, client in deployment_paths:
            add(Target(DEPLOYMENT, path, client, user, lab.admin))
        # The same container with persistence switched off at run time: what AOF costs.
        admin.config_set("appendonly", "no")
        admin.config_set("save", "")
        for path, client in deployment_paths:
            add(Target(DEPLOYMENT_BARE, path, client, user, lab.admin))

    return with_ratios(measured)


def with_ratios(measured: list[tuple[str, str, str, str, int, list[Measured]]]) -> list[Row]:
    """Each command's median run (by requests/s, with its own latencies: one noisy run
    moves nothing), as a ratio to the limit's median run of the same command."""
    rows = [
        Row(name, path, workload, command, pipeline, sorted(samples, key=lambda m: m.rps)[len(samples) // 2], 1.0,
            tuple(m.rps for m in samples))
        for name, path, workload, command, pipeline, samples in measured
    ]  # fmt: skip
    limit = {
        (r.workload, r.command, r.pipeline): r.measured.rps for r in rows if (r.target, r.path) == (LIMIT, LIMIT_PATH)
    }
    return [dataclasses.replace(r, ratio=r.measured.rps / limit[(r.workload, r.command, r.pipeline)]) for r in rows]


def _geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def detail_table(rows: list[Row]) -> str:
    return tables.render(
        ["target", "path", "workload", "command", "P", "k req/s", "× limit", "p50 ms", "p99 ms", "p99.9 ms"],
        [
            [
                r.target,
                r.path,
                r.workload,
                r.command,
                str(r.pipeline),
                f"{r.measured.rps / 1000:.1f}",
                f"{r.ratio:.2f}",
                f"{r.measured.p50_ms:.3f}",
                f"{r.measured.p99_ms:.3f}",
                f"{r.measured.p999_ms:.3f}",
            ]
            for r in rows
        ],
    )


def summary(rows: list[Row]) -> dict[tuple[str, str, int], float]:
    """(target, path, pipeline) -> geometric mean of the ratios over every command."""
    grouped: dict[tuple[str, str, int], list[float]] = {}
    for r in rows:
        grouped.setdefault((r.target, r.path, r.pipeline), []).append(r.ratio)
    return {key: _geomean(values) for key, values in grouped.items()}


def summary_table(rows: list[Row]) -> str:
    found = summary(rows)
    keys = list(dict.fromkeys((t, p) for t, p, _ in found))
    seed = {n: found[(SEED, SEED_PATH, n)] for n in PIPELINES}
    return tables.render(
        ["target", "path", *(f"× limit, P{p}" for p in PIPELINES), *(f"× seed, P{p}" for p in PIPELINES)],
        [
            [
                t,
                p,
                *(f"{found[(t, p, n)]:.2f}" for n in PIPELINES),
                *(f"{found[(t, p, n)] / seed[n]:.2f}" for n in PIPELINES),
            ]
            for t, p in keys
        ],
    )


def figures(rows: list[Row]) -> list[dict[str, object]]:
    """For the results file: per target, path and pipeline, each run's geometric mean over
    the commands of its requests/s, and of its requests/s ÷ the limit's median (and ÷ the
    seed's)."""
    median = {(r.target, r.path, r.command, r.pipeline): r.measured.rps for r in rows}
    grouped: dict[tuple[str, str, int], list[Row]] = {}
    for r in rows:
        grouped.setdefault((r.target, r.path, r.pipeline), []).append(r)
    found: list[dict[str, object]] = []
    for (target, path, pipeline), commands in grouped.items():
        runs = range(len(commands[0].samples))
        # column -> (unit, each run's value)
        per_run = {
            f"k req/s, P{pipeline}": ("k req/s", [_geomean([r.samples[i] / 1000 for r in commands]) for i in runs])
        }
        for versus, (other, other_path) in (("limit", (LIMIT, LIMIT_PATH)), ("seed", (SEED, SEED_PATH))):
            per_run[f"× {versus}, P{pipeline}"] = (
                "×",
                [
                    _geomean([r.samples[i] / median[(other, other_path, r.command, pipeline)] for r in commands])
                    for i in runs
                ],
            )
        for column, (unit, values) in per_run.items():
            row = f"{target} via {path}"
            found.append(results.figure(f"{row}: {column}", values, unit, row=row, column=column))
    return found


def goals(rows: list[Row]) -> list[tuple[str, str, str]]:
    """The issue's goals, each as (goal, measured, met) at pipeline 1 and 16."""
    found = summary(rows)

    def at(target: str, path: str) -> list[float]:
        return [found[(target, path, p)] for p in PIPELINES]

    def ratio_of(a: list[float], b: list[float]) -> list[float]:
        return [x / y for x, y in zip(a, b, strict=True)]

    checks = [
        ("consumers on the network ≥ 0.9 × limit", at(DEPLOYMENT_BARE, "network"), 0.9),
        ("host tools through the socket ≥ 0.9 × limit", at(DEPLOYMENT_BARE, "unix socket"), 0.9),
        ("host tools through the published port ≥ 0.9 × limit", at(DEPLOYMENT_BARE, "published port"), 0.9),
        (
            "persistence off ≥ 0.95 × the seed, network",
            ratio_of(at(DEPLOYMENT_BARE, "network"), at(SEED, "network")),
            0.95,
        ),
        (
            "persistence off ≥ 0.95 × the seed, published port",
            ratio_of(at(DEPLOYMENT_BARE, "published port"), at(SEED, "published port")),
            0.95,
        ),
        (
            "AOF everysec as the stack has it / persistence off (network)",
            ratio_of(at(DEPLOYMENT, "network"), at(DEPLOYMENT_BARE, "network")),
            0.0,
        ),
    ]
    return [
        (
            goal,
            " / ".join(f"P{p}: {v:.2f}" for p, v in zip(PIPELINES, values, strict=True)),
            ("met" if min(values) >= floor else "missed") if floor else "(a cost, stated)",
        )
        for goal, values, floor in checks
    ]


def goals_table(rows: list[Row]) -> str:
    return tables.render(["goal", "measured", "verdict"], [list(g) for g in goals(rows)])
