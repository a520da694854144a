"""The package as users install it, into a fresh virtual environment outside the checkout
(from a copy of what the three distributions hold), run from a folder that is no Pulumi
project. The consumer library and the policy rules are offered as wheels, so they are
there only because pyproject.toml declares them: an undeclared import, or a path into the
checkout, fails here."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bizosaas_redis.settings import load_stack_file
from bizosaas_redis_ops.check import scenarios
from conftest import server_conf

ROOT = Path(__file__).resolve().parents[2]
# What the three distributions are built from.
SOURCES = ("pyproject.toml", "src", "consumer", "policies")
PACKAGES = (
    "bizosaas_redis",
    "bizosaas_redis_pulumi",
    "bizosaas_redis_ops",
    "bizosaas_redis_patterns",
    "redis_policies",
)
APP, ADMIN = "installed-app-password", "installed-admin-password"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder commands run in; its venv/ holds the installed distributions."""
    folder = tmp_path_factory.mktemp("installed")
    source = folder / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("*.egg-info", "__pycache__", "venv")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "venv", str(folder / "venv")], check=True)
    pip = [str(folder / "venv/bin/python"), "-m", "pip", "-q", "--disable-pip-version-check"]
    # Every third-party package first, exactly as uv.lock has it (versions and hashes); then
    # the library and the rules as wheels pip may take, not as requirements given: they are
    # installed only because the project declares them.
    locked = folder / "locked.txt"
    export = [str(ROOT / "scripts/uv"), "export", "--frozen", "--no-dev", "--all-extras", "--no-emit-workspace"]
    subprocess.run([*export, "--format", "requirements-txt", "--quiet", "-o", str(locked)], check=True, cwd=ROOT)
    wheels = folder / "wheels"
    for command in (
        ["install", "--require-hashes", "--no-deps", "-r", str(locked)],
        ["wheel", "--no-deps", "-w", str(wheels), str(source / "consumer"), str(source / "policies")],
        ["install", "--find-links", str(wheels), f"{source}[bench]"],
    ):
        done = subprocess.run([*pip, *command], capture_output=True, text=True, timeout=1200)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    shutil.rmtree(source)  # nothing may still read it
    return folder


def run(folder: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A command of the venv, in `folder`, with no trace of the checkout in its environment."""
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "BIZOSAAS_PROJECT_DIR", "VIRTUAL_ENV")}
    clean["PATH"] = f"{folder / 'venv/bin'}:{clean.get('PATH', '')}"
    return subprocess.run(
        [str(folder / "venv/bin" / argv[0]), *argv[1:]],
        cwd=folder,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_module_imports_from_the_installed_packages(installed: Path) -> None:
    script = f"""
import importlib, pkgutil
for name in {PACKAGES!r}:
    package = importlib.import_module(name)
    assert "/venv/" in package.__file__, package.__file__
    for module in pkgutil.walk_packages(package.__path__, name + "."):
        if not module.name.endswith("__main__"):
            importlib.import_module(module.name)
print("imported")
"""
    done = run(installed, "python", "-c", script)
    assert done.returncode == 0 and done.stdout.strip() == "imported", done.stderr[-3000:]


def test_help_of_every_command_and_docs_outside_a_project(installed: Path) -> None:
    top = run(installed, "bizosaas-redis", "--help")
    assert top.returncode == 0, top.stderr
    commands = [line.split()[0] for line in top.stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert {"up", "verify", "smoke", "monitor", "backup", "docs"} <= set(commands)
    for command in commands:
        helped = run(installed, "bizosaas-redis", command, "--help")
        assert helped.returncode == 0, f"{command}: {helped.stderr}"
    docs = run(installed, "bizosaas-redis", "docs")
    assert docs.returncode == 0, docs.stderr
    assert (
        docs.stdout.startswith("| Key | Default | Applied without restart | Description |")
        and "`redis:maxmemory` | `2gb`" in docs.stdout
    )
    outside = run(installed, "bizosaas-redis", "up", "--stack", "dev")
    assert outside.returncode == 1 and outside.stderr.startswith("bizosaas-redis up: no Pulumi project in "), outside


def test_smoke_and_monitor_by_url(installed: Path, start_redis) -> None:
    process = start_redis(server_conf(load_stack_file("staging", ROOT), APP, ADMIN))
    env = {"REDIS_URL": f"redis://default:{APP}@127.0.0.1:{process.port}/0"}
    smoke = run(installed, "bizosaas-redis", "smoke", env=env)
    assert smoke.returncode == 0, smoke.stdout[-3000:] + smoke.stderr[-3000:]
    assert smoke.stdout.splitlines()[-1] == f"{len(scenarios.SCENARIOS)} passed, 0 failed"
    admin = {"REDIS_URL": f"redis://admin:{ADMIN}@127.0.0.1:{process.port}/0"}
    monitor = run(installed, "bizosaas-redis", "monitor", "--json", env=admin)
    assert monitor.returncode in (0, 1), monitor.stderr  # OK or WARN on an idle server, never unreadable
    assert '"clients"' in monitor.stdout


def test_verify_runs_its_shipped_checks(installed: Path, docker_client) -> None:
    """The testinfra suite ships in the package: verify loads it and names what is missing."""
    missing = "bizosaas-test-installed-none"
    done = run(installed, "bizosaas-redis", "verify", "--container", missing)
    assert done.returncode != 0
    assert f"no container named {missing}" in done.stdout + done.stderr, done.stdout + done.stderr
