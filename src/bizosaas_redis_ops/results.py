"""Results files (`results/<name>.json`): what a measurement measured, on which commit,
when, on what machine, how many runs, and per figure its runs, min/median/max and the bound
a test asserts. The measurements write them when asked (BIZOSAAS_RESULTS_DIR, never by
default); `bizosaas-redis docs` renders the documents' figures from the committed ones.

Standard library only: scripts/measure-tests imports it before any venv exists."""

from __future__ import annotations

import datetime
import json
import os
import platform
import statistics
import subprocess
from pathlib import Path
from typing import Any

RESULTS_DIR = "results"
# Where a measurement writes its results file, when set (an absolute folder: results/ of
# the checkout being measured, for example).
RESULTS_ENV = "BIZOSAAS_RESULTS_DIR"
# A bound a fault test asserts is the worst measured run times this, and at least this much
# above it (a pause of 0.3 s varies by more than half of itself). Twice, not 1.5 times: a
# results file holds 1 to 3 runs of a figure, and one slow run on a loaded machine should
# not fail a suite whose data is safe.
BOUND_FACTOR = 2.0
BOUND_MARGIN_S = 1.0


def _version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"


def machine() -> dict[str, object]:
    """This machine, as every results file states it."""
    pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(pages * page_size / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "docker": _version(["docker", "version", "--format", "{{.Server.Version}}"]),
        "redis": _version(["redis-server", "--version"]).split(" v=")[-1].split()[0],
    }


def figure(name: str, values: list[float], unit: str = "s", **extra: object) -> dict[str, object]:
    """One measured figure over its runs; `extra`: what else a reader needs (command, bound)."""
    return {
        "name": name,
        **extra,
        "unit": unit,
        "runs": len(values),
        "values": [round(v, 3) for v in values],
        # As precise as the values: the documents round each unit as it reads best.
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }


def bound_for(worst: float) -> float:
    """The bound a test asserts for a figure whose worst measured run is `worst`."""
    return round(max(worst * BOUND_FACTOR, worst + BOUND_MARGIN_S), 1)


UNKNOWN = "unknown"


def commit_of(folder: Path) -> str:
    """The commit checked out where `folder` is, or UNKNOWN outside a git checkout."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=folder, capture_output=True, text=True)
    except OSError:
        return UNKNOWN
    return done.stdout.strip() or UNKNOWN


def document(name: str, conditions: str, figures: list[dict[str, object]], commit: str) -> dict[str, Any]:
    return {
        "name": name,
        "commit": commit,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "conditions": conditions,
        "figures": figures,
    }


def write(folder: Path, results: dict[str, Any]) -> Path:
    path = folder / f"{results['name']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    return path


def requested() -> Path | None:
    """The folder a measurement should write its results file to, when asked."""
    folder = os.environ.get(RESULTS_ENV)
    return Path(folder) if folder else None
