"""A deployed stack's outputs, secrets included, wherever the stack was deployed from.

`pulumi up` deployments answer through Pulumi's Automation API, with the same backend
choice as scripts/deploy; local deployments (scripts/local-deploy) through their state.
Scripts (verify, smoke, monitor, backup) use this one function, so they work after either.
"""

from __future__ import annotations

from typing import Any, Literal

from . import local_deploy

Source = Literal["auto", "local", "pulumi"]


class OutputsError(RuntimeError):
    pass


def _from_pulumi(stack: str) -> dict[str, Any]:
    # The same backend choice as scripts/deploy (file backend unless told otherwise).
    from . import deploy

    try:
        return deploy.stack_outputs(stack)
    except deploy.DeployError as exc:
        raise OutputsError(f"{exc}; for a local deployment run: scripts/local-deploy up --stack {stack}") from None
    except Exception as exc:  # the Automation API's errors carry the CLI's message
        if type(exc).__module__.startswith("pulumi.automation"):
            raise OutputsError(
                f"cannot read the outputs of stack {stack}: {str(exc).strip().splitlines()[-1]}"
            ) from None
        raise


def load(stack: str, source: Source = "auto") -> dict[str, Any]:
    """All outputs of the stack with secrets in clear. Never print the result."""
    if source == "local" or (source == "auto" and local_deploy.State.exists(stack)):
        try:
            return local_deploy.outputs(stack, show_secrets=True)
        except local_deploy.DeployError as exc:
            raise OutputsError(str(exc)) from None
    return _from_pulumi(stack)
