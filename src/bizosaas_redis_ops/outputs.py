"""A deployed stack's outputs, secrets included, wherever the stack was deployed from.

`pulumi up` deployments answer through Pulumi's Automation API, with the same backend
choice as bizosaas-redis; local deployments (bizosaas-redis local) through their state.
Scripts (verify, smoke, monitor, backup) use this one function, so they work after either.
"""

from __future__ import annotations

from typing import Any, Literal

from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings import Settings, build_settings

from . import local_apply

Source = Literal["auto", "local", "pulumi"]


class OutputsError(BizosaasRedisError):
    pass


def _from_pulumi(stack: str) -> dict[str, Any]:
    # The same backend choice as bizosaas-redis (file backend unless told otherwise).
    from . import pulumi_stack

    try:
        return pulumi_stack.stack_outputs(stack)
    except pulumi_stack.PulumiStackError as exc:
        raise OutputsError(f"{exc}; for a local deployment run: bizosaas-redis local up --stack {stack}") from None
    except Exception as exc:  # the Automation API's errors carry the CLI's message
        if type(exc).__module__.startswith("pulumi.automation"):
            raise OutputsError(
                f"cannot read the outputs of stack {stack}: {str(exc).strip().splitlines()[-1]}"
            ) from None
        raise


def load(stack: str, source: Source = "auto") -> dict[str, Any]:
    """All outputs of the stack with secrets in clear. Never print the result."""
    if source == "local" or (source == "auto" and local_apply.State.exists(stack)):
        try:
            return local_apply.outputs(stack, show_secrets=True)
        except local_apply.LocalApplyError as exc:
            raise OutputsError(str(exc)) from None
    return _from_pulumi(stack)


def show(stack: str, source: Source = "auto", show_secrets: bool = False) -> dict[str, Any]:
    """The outputs for people: secrets masked unless asked for."""
    if source == "local" or (source == "auto" and local_apply.State.exists(stack)):
        try:
            return local_apply.outputs(stack, show_secrets=show_secrets)
        except local_apply.LocalApplyError as exc:
            raise OutputsError(str(exc)) from None
    from . import pulumi_stack

    return pulumi_stack.masked_outputs(stack, show_secrets)


def settings(stack: str, source: Source = "auto") -> Settings:
    """The settings the deployment runs with: the stack file plus a local run's overrides,
    or the `settings` output of a Pulumi deployment (which already holds them)."""
    if source == "local" or (source == "auto" and local_apply.State.exists(stack)):
        state = local_apply.State.load(stack)
        return build_settings(local_apply.stack_values(stack, state.overrides), stack)
    values = {k: v for k, v in _from_pulumi(stack)["settings"].items() if k != "stack"}
    return build_settings(values, stack, source=f"the settings output of stack {stack}")
