"""A deployed stack's outputs, secrets included, wherever the stack was deployed from.

`pulumi up` deployments answer through `pulumi stack output --show-secrets`; local
deployments (scripts/local-deploy) through their state. Scripts (verify, smoke, monitor,
backup) use this one function, so they work after either.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any, Literal

from . import local_deploy

Source = Literal["auto", "local", "pulumi"]


class OutputsError(RuntimeError):
    pass


def _from_pulumi(stack: str) -> dict[str, Any]:
    if shutil.which("pulumi") is None:
        raise OutputsError(
            "the Pulumi CLI is not installed (https://www.pulumi.com/docs/install/); "
            f"for a local deployment run: scripts/local-deploy up --stack {stack}"
        )
    result = subprocess.run(
        ["pulumi", "stack", "output", "--stack", stack, "--json", "--show-secrets"],
        capture_output=True,
        text=True,
        cwd=local_deploy.PROJECT_ROOT,
    )
    if result.returncode != 0:
        raise OutputsError(f"pulumi stack output --stack {stack} failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def load(stack: str, source: Source = "auto") -> dict[str, Any]:
    """All outputs of the stack with secrets in clear. Never print the result."""
    if source == "local" or (source == "auto" and local_deploy.State.load(stack).passwords):
        try:
            return local_deploy.outputs(stack, show_secrets=True)
        except local_deploy.DeployError as exc:
            raise OutputsError(str(exc)) from None
    return _from_pulumi(stack)
