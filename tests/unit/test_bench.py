"""The benchmark's pure parts: reading redis-benchmark, ratios, the goals' verdicts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bizosaas_redis_ops.bench import paths
from bizosaas_redis_ops.bench.runner import WORKLOADS, BenchmarkError, Measured, parse

# Printed by Debian 12's redis-benchmark 7.0.15 (GET, 50 clients, 20 000 requests).
SAMPLE = Path(__file__).parent / "data" / "redis-benchmark-7.0-get.txt"


def test_parse_reads_the_summary_and_the_p999_step():
    measured = parse(SAMPLE.read_text())
    assert measured == Measured(rps=111111.11, p50_ms=0.223, p99_ms=0.823, p999_ms=4.831)


@pytest.mark.parametrize("text", ["", "Error: Connection refused\n", SAMPLE.read_text().split("Summary:")[0]])
def test_parse_refuses_output_without_a_summary(text):
    with pytest.raises(BenchmarkError, match="redis-benchmark printed no summary"):
        parse(text)


def rows(ratios: dict[tuple[str, str], float]) -> list[paths.Row]:
    """Every command at both pipelines, each at the ratio given for its target and path."""
    made = []
    for (target, path), ratio in ratios.items():
        for pipeline in paths.PIPELINES:
            for workload, commands in WORKLOADS.items():
                for label, _ in commands:
                    measured = Measured(10_000 * ratio, 0.2, 0.5, 1.0)
                    made.append(paths.Row(target, path, workload, label, pipeline, measured, ratio))
    return made


def test_goals_say_met_or_missed_against_their_floor():
    found = rows(
        {
            (paths.LIMIT, paths.LIMIT_PATH): 1.0,
            (paths.SEED, "network"): 0.9,
            (paths.SEED, "published port"): 0.4,
            (paths.DEPLOYMENT, "network"): 0.81,
            (paths.DEPLOYMENT_BARE, "network"): 0.9,
            (paths.DEPLOYMENT_BARE, "published port"): 0.36,
            (paths.DEPLOYMENT_BARE, "unix socket"): 0.95,
        }
    )
    verdicts = {goal: (measured, verdict) for goal, measured, verdict in paths.goals(found)}
    assert verdicts["consumers on the network ≥ 0.9 × limit"] == ("P1: 0.90 / P16: 0.90", "met")
    assert verdicts["host tools through the socket ≥ 0.9 × limit"][1] == "met"
    assert verdicts["host tools through the published port ≥ 0.9 × limit"] == ("P1: 0.36 / P16: 0.36", "missed")
    assert verdicts["persistence off ≥ 0.95 × the seed, network"] == ("P1: 1.00 / P16: 1.00", "met")
    assert verdicts["persistence off ≥ 0.95 × the seed, published port"] == ("P1: 0.90 / P16: 0.90", "missed")
    assert verdicts["AOF everysec as the stack has it / persistence off (network)"] == (
        "P1: 0.90 / P16: 0.90",
        "(a cost, stated)",
    )


def test_summary_is_the_geometric_mean_over_commands():
    # Of the 9 commands at each pipeline, 5 at 2.0 and 4 at 0.5: the geometric mean is
    # 2 ** (1/9) ≈ 1.08, where the arithmetic mean would say 1.33.
    found = [
        dataclasses.replace(row, ratio=0.5 if i % 2 else 2.0)
        for i, row in enumerate(rows({(paths.LIMIT, paths.LIMIT_PATH): 1.0}))
    ]
    assert paths.summary(found)[(paths.LIMIT, paths.LIMIT_PATH, 1)] == pytest.approx(2.0 ** (1 / 9))


def test_parse_refuses_a_run_too_short_to_time():
    text = SAMPLE.read_text().replace("111111.11 requests per second", "inf requests per second")
    with pytest.raises(BenchmarkError, match="too short to time: raise --requests"):
        parse(text)


def test_deploy_times_become_one_figure_per_stack_and_step_over_the_runs():
    from bizosaas_redis_ops.bench import deploy_times

    runs = [
        deploy_times.Timing("dev", {"up (create)": 19.0, "destroy": 5.0}),
        deploy_times.Timing("dev", {"up (create)": 21.0, "destroy": 6.0}),
        deploy_times.Timing("staging", {"up (create)": 18.0}),
    ]
    figures = {f["name"]: f for f in deploy_times.figures(runs)}
    assert set(figures) == {"dev: up (create)", "dev: destroy", "staging: up (create)"}
    assert figures["dev: up (create)"]["values"] == [19.0, 21.0] and figures["dev: up (create)"]["median"] == 20.0
    assert figures["staging: up (create)"]["runs"] == 1


def test_smoke_rows_keep_their_units_in_the_results_file():
    from bizosaas_redis_ops.bench import smoke_timings

    rows = [
        smoke_timings.Row("smoke: sessions", "ms", [4.0, 6.0, 5.0]),
        smoke_timings.Row("smoke: whole suite", "s", [1.7]),
    ]
    figures = smoke_timings.figures(rows)
    assert [(f["name"], f["unit"], f["median"]) for f in figures] == [
        ("smoke: sessions", "ms", 5.0),
        ("smoke: whole suite", "s", 1.7),
    ]


def measured(target: str, path: str, runs: list[float]) -> list[tuple[str, str, str, str, int, list[Measured]]]:
    """Every command at both pipelines, each with these requests/s over its runs."""
    return [
        (target, path, workload, label, pipeline, [Measured(rps, 0.2, 0.5, 1.0) for rps in runs])
        for pipeline in paths.PIPELINES
        for workload, commands in WORKLOADS.items()
        for label, _ in commands
    ]


def test_paths_are_ratios_to_the_limits_socket_and_to_the_seeds_network_path_run_by_run():
    found = paths.with_ratios(
        measured(paths.LIMIT, paths.LIMIT_PATH, [90_000, 100_000, 110_000])
        + measured(paths.SEED, paths.SEED_PATH, [80_000, 80_000, 80_000])
        + measured(paths.DEPLOYMENT, "network", [60_000, 70_000, 80_000])
    )
    # The ratio of a row is its median run's to the limit's median run.
    assert {(r.target, round(r.ratio, 2)) for r in found} == {
        (paths.LIMIT, 1.0),
        (paths.SEED, 0.8),
        (paths.DEPLOYMENT, 0.7),
    }
    figures = {f["name"]: f for f in paths.figures(found)}
    deployment = figures[f"{paths.DEPLOYMENT} via network: × limit, P1"]
    assert deployment["values"] == [0.6, 0.7, 0.8] and deployment["unit"] == "×"
    assert figures[f"{paths.DEPLOYMENT} via network: × seed, P16"]["values"] == [0.75, 0.875, 1.0]
    assert figures[f"{paths.LIMIT} via {paths.LIMIT_PATH}: k req/s, P1"]["median"] == 100.0
    assert deployment["row"] == f"{paths.DEPLOYMENT} via network" and deployment["column"] == "× limit, P1"


def test_growth_figures_are_one_per_quantity_and_size_with_the_unit_in_the_row():
    from bizosaas_redis_ops.bench import growth

    fields = {field: float(i + 1) for i, (_, field, _) in enumerate(growth.QUANTITIES)}
    rows = [growth.Growth(target_mb=size, **{**fields, "keys": size * 450}) for size in (100, 500)]
    figures = growth.figures(rows)
    assert len(figures) == 2 * len(growth.QUANTITIES)
    keys = [f for f in figures if f["row"] == "keys"]
    assert [(f["column"], f["values"]) for f in keys] == [("100 MB", [45000.0]), ("500 MB", [225000.0])]
    assert {f["unit"] for f in figures} == {unit for _, _, unit in growth.QUANTITIES}


def test_durable_writes_give_p50_p99_and_max_per_kind():
    from bizosaas_redis_ops.bench import durable_writes

    row = durable_writes.Row("plain SET", [float(n) for n in range(1, 201)])
    assert (row.p50, row.p99) == (100.5, 199.0)
    figures = {f["column"]: f for f in durable_writes.figures([row])}
    assert {column: f["values"] for column, f in figures.items()} == {
        "p50 ms": [100.5],
        "p99 ms": [199.0],
        "max ms": [200.0],
    }
    assert figures["p99 ms"]["row"] == "plain SET" and figures["p99 ms"]["writes"] == 200
