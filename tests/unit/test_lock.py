"""Every Python package this repository installs comes from uv.lock, and the lock is
refused, before anything is installed, once a pyproject.toml asks for something it lacks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import ROOT

# What `uv lock --check` and scripts/setup read: the workspace's three pyproject.toml files,
# the lock, and the scripts.
COPIED = ("pyproject.toml", "uv.lock", "consumer/pyproject.toml", "policies/pyproject.toml", "scripts")
STALE = (
    "setup: uv.lock is out of date with pyproject.toml (or consumer/, policies/): "
    "run scripts/uv lock, then commit uv.lock"
)


def check(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(folder / "scripts/uv"), "lock", "--check"], cwd=folder, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    for name in COPIED:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        copier = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copier(ROOT / name, tmp_path / name)
    return tmp_path


def test_the_lock_holds_what_every_pyproject_asks_for() -> None:
    result = check(ROOT)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("path", "old", "new"),
    [
        ("pyproject.toml", '"click>=8.1,<9",', '"click>=8.1,<9",\n    "six>=1.16",'),
        ("consumer/pyproject.toml", 'dependencies = ["redis>=5,<9"]', 'dependencies = ["redis>=5,<10"]'),
        ("policies/pyproject.toml", '"pulumi-policy==1.21.0"', '"pulumi-policy==1.21.0", "six>=1.16"'),
    ],
)
def test_setup_refuses_a_stale_lock_in_one_line_and_installs_nothing(copy: Path, path: str, old: str, new: str) -> None:
    assert check(copy).returncode == 0, "the unchanged copy is up to date (else this test proves nothing)"
    text = (copy / path).read_text()
    assert old in text
    (copy / path).write_text(text.replace(old, new))
    assert check(copy).returncode != 0
    setup = subprocess.run([str(copy / "scripts/setup")], cwd=copy, capture_output=True, text=True, timeout=300)
    assert setup.returncode == 1
    assert setup.stderr.strip().splitlines()[-1] == STALE
    assert not (copy / "venv").exists(), "nothing is installed from a stale lock"
