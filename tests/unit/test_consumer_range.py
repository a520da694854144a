"""The consumer library is a library: services install it beside their own redis-py, so it
keeps a range (consumer/pyproject.toml) and passes its tests at both ends of it. Each end is
an environment of its own, synced from the one uv.lock (its redis-lowest and redis-newest
groups), holding only the library, that redis-py, numpy and pytest."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT, unavailable

# The lock's group for each end, and the redis-py version that end must have installed.
ENDS = {"redis-lowest": "5.0.", "redis-newest": "8."}


def sync(group: str, environment: Path) -> None:
    command = [str(ROOT / "scripts/uv"), "sync", "--locked", "--quiet", "--package", "bizosaas-redis-patterns"]
    command += ["--extra", "numpy", "--group", "test", "--group", group]
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(environment)}
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        unavailable(f"could not sync the consumer library's {group} environment: {done.stderr.strip()[-500:]}")


@pytest.mark.redis
@pytest.mark.parametrize("group", ENDS)
def test_consumer_library_passes_at_each_end_of_its_redis_range(group: str, tmp_path: Path) -> None:
    environment = tmp_path / group
    sync(group, environment)
    python = str(environment / "bin/python")
    version = subprocess.run([python, "-c", "import redis; print(redis.__version__)"], capture_output=True, text=True)
    assert version.stdout.startswith(ENDS[group]), f"{group} installed redis-py {version.stdout or version.stderr}"
    # The library's own pytest configuration (consumer/pyproject.toml), in the library's folder.
    tests = subprocess.run(
        [python, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT / "consumer",
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = tests.stdout.strip().splitlines()[-1] if tests.stdout.strip() else ""
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert re.fullmatch(r"\d+ passed in [\d.]+s", summary), f"redis-py {version.stdout.strip()}: {summary}"
