"""The benchmarks run end to end with small counts, so they cannot rot. No timing is asserted."""

from __future__ import annotations

import re

import pytest

from bizosaas_redis_ops import results
from bizosaas_redis_ops.bench import growth, paths
from bizosaas_redis_ops.bench.runner import WORKLOADS
from conftest import TEST_PREFIX, cli

PREFIX = f"{TEST_PREFIX}-bench"
PNG = b"\x89PNG\r\n\x1a\n"


def _dangling_volumes(engine) -> set[str]:
    return {v.name for v in engine.volumes.list(filters={"dangling": True})}


def _nothing_left(engine, dangling_before: set[str]) -> None:
    assert not engine.containers.list(all=True, filters={"name": PREFIX})
    # The client containers' anonymous volumes (the image's VOLUME /data) went with them.
    assert _dangling_volumes(engine) <= dangling_before
    assert not engine.volumes.list(filters={"name": PREFIX})
    assert not engine.networks.list(names=[f"{PREFIX}-net"])


@pytest.fixture(autouse=True)
def no_results_file(monkeypatch: pytest.MonkeyPatch) -> None:
    """These runs use tiny counts: never a measurement to keep, even when the suite runs
    with BIZOSAAS_RESULTS_DIR (scripts/measure-tests), which would overwrite the real one."""
    monkeypatch.delenv(results.RESULTS_ENV, raising=False)


def test_paths_measures_every_path_and_cleans_up(engine, offline_image, tmp_path):
    chart = tmp_path / "paths.png"
    dangling = _dangling_volumes(engine)
    result = cli(
        "benchmark", "paths", "--image", offline_image, "--requests", "5000",
        "--name-prefix", PREFIX, "--chart", str(chart),
    )  # fmt: skip
    detail, summary, goals = result.stdout.split("chart:")[0].strip().split("\n\n")
    commands = sum(len(c) for c in WORKLOADS.values())
    measured = [line for line in detail.splitlines()[2:] if line.strip()]
    # 10 target/path pairs × 9 commands × 2 pipeline depths, each with a number in every column.
    assert len(measured) == 10 * commands * len(paths.PIPELINES)
    for line in measured:
        cells = re.split(r"\s{2,}", line.strip())
        assert all(float(c) > 0 for c in cells[-5:]), line
        if cells[:2] == [paths.LIMIT, paths.LIMIT_PATH]:
            assert cells[-4] == "1.00"
    summary_rows = [re.split(r"\s{2,}", line.strip()) for line in summary.splitlines()[2:]]
    assert {row[1] for row in summary_rows} == {"loopback", "network", "published port", "unix socket"}
    # × limit at P1 and P16, then × seed: the seed on its network path is 1.00 of itself.
    seed = next(row for row in summary_rows if row[:2] == [paths.SEED, paths.SEED_PATH])
    assert seed[4:] == ["1.00", "1.00"]
    assert len(goals.splitlines()) == 2 + 6 and ("met" in goals or "missed" in goals)
    assert chart.read_bytes().startswith(PNG)
    _nothing_left(engine, dangling)


def test_growth_measures_each_size_and_cleans_up(engine, offline_image, tmp_path):
    chart = tmp_path / "growth.png"
    dangling = _dangling_volumes(engine)
    result = cli(
        "benchmark", "growth", "--image", offline_image, "--sizes", "8,16",
        "--set", "healthcheckInterval=1", "--set", "healthcheckTimeout=1",
        "--name-prefix", PREFIX, "--chart", str(chart),
    )  # fmt: skip
    table = result.stdout.split("chart:")[0]
    lines = {re.split(r"\s{2,}", line.strip())[0]: re.split(r"\s{2,}", line.strip())[1:] for line in table.splitlines()}
    assert lines["measured"] == ["8 MB", "16 MB"]
    small, large = (float(v) for v in lines["dataset (used_memory), MB"])
    assert 8 <= small < large  # filled to at least the size asked for
    for label, _, unit in growth.QUANTITIES:
        assert all(float(v) > 0 for v in lines[f"{label}, {unit}" if unit else label]), label
    peak, limit = (float(lines[row][0]) for row in ("peak RSS during the rewrite, MB", "container memory limit, MB"))
    assert 0 < peak < limit
    assert chart.read_bytes().startswith(PNG)
    _nothing_left(engine, dangling)


def test_deploy_times_every_stack_and_cleans_up(engine, offline_image):
    dangling = _dangling_volumes(engine)
    result = cli("benchmark", "deploy", "--image", offline_image, "--name-prefix", PREFIX)
    rows = [re.split(r"\s{2,}", line.strip()) for line in result.stdout.splitlines()[2:] if line.strip()]
    assert [row[0] for row in rows] == ["dev", "production", "staging"]
    for row in rows:
        assert len(row) == 6 and all(cell.endswith(" s") and float(cell[:-2]) > 0 for cell in row[1:]), row
    _nothing_left(engine, dangling)
