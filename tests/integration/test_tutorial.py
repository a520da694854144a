"""The tutorial, run as written: every shell block of docs/tutorial.md in order, as a
newcomer pastes them, with the setting change its prose asks for between them.

Only the names differ: the dev stack's container, volume, network and port are mapped to
the test's own (a sandbox project folder, so nothing named like the real dev stack is
touched), and the image is the offline stand-in. The first block, `scripts/setup`, is the
suite's own setup and is not run again."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator

import pytest
import redis

from bizosaas_redis.settings import Settings
from bizosaas_redis_ops.deploy.sandbox import Project, Sandbox, parse_assignments, settings_of
from conftest import ROOT, TEST_PREFIX, stand_in_overrides

TUTORIAL = ROOT / "docs" / "tutorial.md"
STACK = "dev"
SHELL_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.DOTALL | re.MULTILINE)
# The prose's setting change: "set `redis:maxmemory: 512mb`".
SETTING_STEP = re.compile(r"set `(redis:\w+): ([^`]+)`")
# The passphrase the tutorial exports: the sandbox's state is encrypted with it.
PASSPHRASE = re.search(r"PULUMI_CONFIG_PASSPHRASE=(\S+)", TUTORIAL.read_text()).group(1)  # type: ignore[union-attr]
NAMES = {
    "containerName": f"{TEST_PREFIX}-tutorial",
    "volumeName": f"{TEST_PREFIX}-tutorial-data",
    "networkName": f"{TEST_PREFIX}-tutorial",
}


def steps(text: str) -> list[tuple[list[str], str]]:
    """Each shell block, after the settings its preceding prose changes (KEY=VALUE)."""
    found, start = [], 0
    for block in SHELL_BLOCK.finditer(text):
        prose = text[start : block.start()]
        found.append(([f"{key}={value}" for key, value in SETTING_STEP.findall(prose)], block.group(1)))
        start = block.end()
    return found


def mapped(block: str, real: Settings, ours: Settings) -> str:
    """The block with the dev stack's names and port replaced by the sandbox's."""
    for theirs, own in (
        (real.container_name, ours.container_name),
        (real.volume_name, ours.volume_name),
        (real.network_name, ours.network_name),
        (str(real.host_port), str(ours.host_port)),
    ):
        block = re.sub(rf"(?<![\w-]){re.escape(theirs)}(?![\w-])", own, block)
    return block


def sandbox_admin(sandbox: Sandbox) -> redis.Redis:
    return redis.Redis.from_url(sandbox.outputs()["redis_admin_url"], decode_responses=True)


@pytest.fixture
def sandbox(engine, offline_image) -> Iterator[Sandbox]:
    made = Sandbox(STACK, stand_in_overrides(STACK, offline_image, NAMES), Project(passphrase=PASSPHRASE))
    made.write()
    yield made
    made.close(engine)
    made.project.remove()


def test_the_steps_are_found():
    found = steps(TUTORIAL.read_text())
    assert found[0] == ([], "scripts/setup\n")
    assert [changes for changes, _ in found if changes] == [["redis:maxmemory=512mb"]]
    assert any("destroy --stack dev" in block for _, block in found)


def test_the_tutorial_runs_as_written(sandbox: Sandbox, engine) -> None:
    real, ours = settings_of(STACK, {}), sandbox.settings()
    env = {**os.environ, **sandbox.env()}
    for changes, block in steps(TUTORIAL.read_text())[1:]:
        if changes:
            sandbox.overrides.update(parse_assignments(changes))
            sandbox.write()
        command = mapped(block, real, ours)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, f"the tutorial's block failed:\n{command}\n{(done.stdout + done.stderr)[-4000:]}"
        if changes:
            # The change reached the running server (the step found is maxmemory's).
            changed = sandbox.settings().maxmemory
            assert changed != real.maxmemory
            assert sandbox_admin(sandbox).config_get("maxmemory")["maxmemory"] == str(changed)
    # The last block: the container is gone, the data kept (retainDataOnDestroy).
    assert not engine.containers.list(all=True, filters={"name": f"^{ours.container_name}$"})
    assert engine.volumes.get(ours.volume_name)
