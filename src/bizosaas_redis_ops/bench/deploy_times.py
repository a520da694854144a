"""How long each stack's Pulumi operations take with the real engine, through `bizosaas-redis`.

Each stack file is deployed under `<prefix>-<stack>` names from a project folder of its
own (sandbox.py), external networks included (made for the run), and timed: the first
`up` (preflight, policy pack, containers created and healthy), a `preview` with nothing to
change, a second `up` with nothing to change, a `refresh`, and `destroy`. Everything is
removed afterwards.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import docker

from bizosaas_redis_ops import results, tables
from bizosaas_redis_ops.deploy.docker_engine import free_port
from bizosaas_redis_ops.deploy.sandbox import Sandbox, settings_of
from bizosaas_redis_ops.images import exporter_image

STEPS = ("up (create)", "preview (no change)", "up (no change)", "refresh", "destroy")


@dataclass(frozen=True)
class Timing:
    stack: str
    seconds: dict[str, float]


def _names(prefix: str, stack: str, external: bool) -> dict[str, str]:
    own = f"{prefix}-{stack}"
    return {"containerName": own, "volumeName": f"{own}-data", "networkName": f"{prefix}-net" if external else own}


@contextlib.contextmanager
def _network(engine: docker.DockerClient, name: str) -> Iterator[None]:
    """The external network a stack looks up (Dokploy's), for the run."""
    made = None if engine.networks.list(names=[name]) else engine.networks.create(name, driver="bridge")
    try:
        yield
    finally:
        if made is not None:
            made.remove()


def measure(
    engine: docker.DockerClient, stack: str, image: str | None, prefix: str, progress: Callable[[str], None]
) -> Timing:
    external = settings_of(stack, {}).network_external
    overrides: dict[str, Any] = {**_names(prefix, stack, external), "hostPort": free_port()}
    overrides["exporterPort"] = free_port()
    if image:
        # Where Redis is the stand-in, no registry serves the exporter's image either.
        overrides |= {"image": image, "exporterImage": exporter_image.build(engine)}
    sandbox = Sandbox(stack, overrides)
    seconds: dict[str, float] = {}

    def timed(step: str, action: Callable[[], object]) -> None:
        progress(f"{stack}: {step}")
        started = time.monotonic()
        action()
        seconds[step] = time.monotonic() - started

    with _network(engine, f"{prefix}-net"):
        try:
            timed(STEPS[0], sandbox.up)
            timed(STEPS[1], lambda: sandbox.run("preview", "--stack", stack, "--expect-no-changes"))
            timed(STEPS[2], sandbox.up)
            timed(STEPS[3], lambda: sandbox.workspace_stack().refresh(expect_no_changes=True))
            timed(STEPS[4], sandbox.destroy)
        finally:
            sandbox.close(engine)
            sandbox.project.remove()
    return Timing(stack, seconds)


def table(found: list[Timing]) -> str:
    return tables.render(
        ["stack", *STEPS], [[t.stack, *(f"{t.seconds.get(step, float('nan')):.1f} s" for step in STEPS)] for t in found]
    )


def figures(found: list[Timing]) -> list[dict[str, object]]:
    """Each stack's steps over the runs, for the results file."""
    by_step: dict[str, list[float]] = {}
    for timing in found:
        for step in STEPS:
            if step in timing.seconds:
                by_step.setdefault(f"{timing.stack}: {step}", []).append(timing.seconds[step])
    return [results.figure(name, values) for name, values in by_step.items()]
