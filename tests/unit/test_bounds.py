"""The bounds the fault and change tests assert, held to the committed measurements
(results/*.json, written by those tests when BIZOSAAS_RESULTS_DIR is set, as
scripts/measure-tests does): every run measured was within the bound it was asserted
against, and each bound set from the measurements is no looser than results.bound_for of
the worst run, so a slower regression cannot hide in a generous number."""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from bizosaas_redis_ops import results
from conftest import ROOT

FOLDER = ROOT / results.RESULTS_DIR
# The results files of the tests that assert bounds, and the modules that write them.
BOUNDED = {
    "change-paths": "tests/integration/test_data_safety.py",
    "standalone-faults": "tests/integration/test_faults.py",
    "ha-faults": "tests/integration/test_sentinel_hosts.py",
    "adoption": "tests/integration/test_adoption.py",
}


def _figures(name: str) -> list[dict]:
    path = FOLDER / f"{name}.json"
    assert path.exists(), f"{path} is missing: run {BOUNDED[name]} with BIZOSAAS_RESULTS_DIR and commit it"
    return json.loads(path.read_text())["figures"]


@functools.cache
def _module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bounded_{name.replace('-', '_')}", ROOT / BOUNDED[name])
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _bound_now(name: str, figure: dict) -> float:
    """The bound the test module asserts today for a figure of its results file."""
    module = _module(name)
    if name == "change-paths":
        kind = figure["group"].removeprefix("container ")
        return float(module.PAUSE_BOUND[None if kind == "kept" else kind])
    if name == "standalone-faults":
        return float(module.KILL_PAUSE_BOUND)
    if name == "adoption":
        return float(module.MAX_OUTAGE_S)
    return float(module.BOUNDS[figure["fault"]].pause)


@pytest.mark.parametrize("name", sorted(BOUNDED))
def test_every_measured_run_was_within_its_bound(name: str) -> None:
    figures = [f for f in _figures(name) if "bound" in f]  # the others are context (a load time)
    assert figures and all(f["values"] for f in figures), name
    over = [(f["name"], max(f["values"]), f["bound"]) for f in figures if max(f["values"]) > f["bound"]]
    assert over == [], over


@pytest.mark.parametrize("name", sorted(BOUNDED))
def test_a_bound_set_from_the_measurements_is_no_looser_than_the_rule(name: str) -> None:
    """Figures that share one bound (a `group`: every change that replaces the container)
    are held to it together: the bound follows the worst of all their runs."""
    worst: dict[str, tuple[float, float]] = {}
    for f in _figures(name):
        if f.get("bound_from") == "measured":
            key = f.get("group", f["name"])
            most = max(worst.get(key, (0.0, 0.0))[0], *f["values"])
            worst[key] = (most, _bound_now(name, f))
    assert worst, f"{name}: no bound is set from the measurements"
    # (worst run, the bound asserted today, the rule's bound): worst <= bound <= rule.
    found = {key: (most, bound, results.bound_for(most)) for key, (most, bound) in worst.items()}
    assert {key: row for key, row in found.items() if not row[0] <= row[1] <= row[2]} == {}


def test_the_rule_is_the_worst_run_times_the_factor_or_plus_the_margin() -> None:
    assert results.bound_for(4.0) == 4.0 * results.BOUND_FACTOR
    assert results.bound_for(0.3) == round(0.3 + results.BOUND_MARGIN_S, 1)
    assert results.bound_for(0.0) == results.BOUND_MARGIN_S


def test_a_bound_figure_written_by_a_test_round_trips(tmp_path: Path) -> None:
    figure = results.figure("kill: pause", [1.25, 0.5, 2.0], bound=3.0, bound_from="measured")
    written = results.write(tmp_path, results.document("example", "here", [figure], "abc1234"))
    loaded = json.loads(written.read_text())
    assert loaded["figures"][0] == figure
    assert (figure["runs"], figure["min"], figure["median"], figure["max"]) == (3, 0.5, 1.25, 2.0)
    assert {"cores", "memory_gib", "kernel", "docker", "redis"} <= set(loaded["machine"])
