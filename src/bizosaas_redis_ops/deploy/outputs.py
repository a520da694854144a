"""A deployed stack's outputs, secrets included, as Pulumi's state holds them.

They are read through Pulumi's Automation API with the same backend choice as
bizosaas-redis up; the tools (verify, smoke, monitor, backup, ...) use these functions.
"""

from __future__ import annotations

from typing import Any, Literal

import redis

from bizosaas_redis import handover
from bizosaas_redis.connection import credentials, instance_names
from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings import Settings, build_settings
from bizosaas_redis.settings import instance as instance_of
from bizosaas_redis_ops.deploy import pulumi_stack

# Which instance of a stack a tool works on: a split stack's cache or durable instance
# (a single stack's one instance answers to `cache`).
Instance = Literal["cache", "durable"]


class OutputsError(BizosaasRedisError):
    pass


def _from_pulumi(stack: str) -> dict[str, Any]:
    from pulumi.automation.errors import CommandError  # loaded only when a stack is read

    try:
        return pulumi_stack.stack_outputs(stack)
    except pulumi_stack.PulumiStackError as exc:
        raise OutputsError(str(exc)) from None
    except CommandError as exc:  # the Automation API's errors carry the CLI's message
        said = pulumi_stack.engine_errors(exc)
        raise OutputsError(
            f"cannot read the outputs of stack {stack}: {said} (deploy it first: bizosaas-redis up --stack {stack})"
        ) from None


def load(stack: str, instance: Instance = "cache") -> dict[str, Any]:
    """All outputs of the stack with secrets in clear, the instance's under the unprefixed
    keys (`redis_admin_url`, `container_name`, ...). Never print the result."""
    return for_instance(_from_pulumi(stack), instance, stack)


def for_instance(values: dict[str, Any], instance: Instance, stack: str, required: bool = True) -> dict[str, Any]:
    """`required`: see follow_primary."""
    if instance == "cache":
        return follow_primary(values, required)
    prefix = instance_names("durable").output_prefix
    if f"{prefix}container_name" not in values:
        raise OutputsError(f"stack {stack} has layout {values.get('layout', 'single')}: it has no durable instance")
    durable = {**values, **{k.removeprefix(prefix): v for k, v in values.items() if k.startswith(prefix)}}
    return follow_primary(durable, required)


def running_instances(stack: str) -> dict[str, dict[str, Any]]:
    """The outputs of each instance the stack runs now (cache, durable), none before its first `up`."""
    values = pulumi_stack.existing_outputs(stack)
    if not values:
        return {}
    # The preflight reads how much data an instance holds: any node tells, so a stack whose
    # Sentinels are all gone can still be repaired by `up`.
    found = {"cache": for_instance(values, "cache", stack, required=False)}
    if f"{instance_names('durable').output_prefix}container_name" in values:
        found["durable"] = for_instance(values, "durable", stack, required=False)
    return found


def sentinel_client(values: dict[str, Any]) -> redis.Redis | None:
    """An admin client of the first Sentinel that answers (topology sentinel), else None."""
    if values.get("topology") != "sentinel":
        return None
    username, password = credentials(str(values["redis_admin_url"]))
    for endpoint in values["sentinels"]:
        host, _, port = str(endpoint).rpartition(":")
        client = handover.client_at((host, int(port)), username, password)
        try:
            client.ping()
            return client
        except redis.RedisError:
            client.close()
    return None


def follow_primary(values: dict[str, Any], required: bool = True) -> dict[str, Any]:
    """With topology sentinel: the URLs, host, port and container of the node Sentinel
    reports as the primary now (the outputs name node 0, the first one), so that tools
    work on the primary after a failover. A Sentinel that refuses stops it (HandoverError);
    so does finding no Sentinel at all, unless not `required` (then node 0's, as deployed)."""
    if values.get("topology") != "sentinel":
        return values
    found = handover.primary_at(
        list(values["sentinels"]), str(values["master_name"]), *credentials(str(values["redis_admin_url"]))
    )
    if found is None:
        if not required:
            return values
        raise OutputsError(
            f"no Sentinel of the stack answers ({', '.join(values['sentinels'])}: connection refused or gone): "
            "cannot tell which node is the primary; start them (bizosaas-redis up) and try again"
        )
    endpoint = f"{found[0]}:{found[1]}"
    if endpoint not in values["nodes"]:
        nodes = ", ".join(values["nodes"])
        raise OutputsError(f"the Sentinels name {endpoint} the primary, which is none of the stack's nodes ({nodes})")
    index = list(values["nodes"]).index(endpoint)
    first = values["nodes"][0]

    def moved(url: str) -> str:
        return url.replace(f"@{first}/", f"@{endpoint}/").replace(f"//{first}/", f"//{endpoint}/")

    return {
        **values,
        "redis_url": moved(str(values["redis_url"])),
        "redis_admin_url": moved(str(values["redis_admin_url"])),
        "host": found[0],
        "port": found[1],
        "container_name": values["node_containers"][index],
    }


def show(stack: str, show_secrets: bool = False) -> dict[str, Any]:
    """The outputs for people: secrets masked unless asked for."""
    return pulumi_stack.masked_outputs(stack, show_secrets)


def settings(stack: str, instance: Instance = "cache", values: dict[str, Any] | None = None) -> Settings:
    """The settings the deployment runs with (its `settings` output), those of the durable
    instance when asked; `values`: the outputs when already read."""
    given = (values if values is not None else _from_pulumi(stack))["settings"]
    found = build_settings(
        {k: v for k, v in given.items() if k != "stack"}, stack, source=f"the settings output of stack {stack}"
    )
    return instance_of(found, instance)
