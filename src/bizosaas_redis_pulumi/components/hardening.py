"""What every container of the service shares: no root filesystem writes, no
capabilities, no privilege gain, no swap, rotated logs, labels saying whose it is."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_docker as docker

from bizosaas_redis.constants import LABEL_ENVIRONMENT, LABEL_ROLE, LABEL_SERVICE, LABEL_STACK
from bizosaas_redis.settings import Settings


def ownership_labels(settings: Settings, service: str) -> dict[str, str]:
    return {
        LABEL_SERVICE: service,
        LABEL_STACK: settings.stack,
        LABEL_ENVIRONMENT: settings.environment,
        LABEL_ROLE: settings.role,
    }


def label_args(labels: Mapping[str, pulumi.Input[str]]) -> list[docker.ContainerLabelArgs]:
    return [docker.ContainerLabelArgs(label=k, value=v) for k, v in labels.items()]


def stack_label(settings: Settings) -> dict[str, str]:
    """The label of volumes and networks (they take no environment)."""
    return {"label": LABEL_STACK, "value": settings.stack}


def hardened_container_args(settings: Settings, memory_mb: int) -> dict[str, Any]:
    """Container arguments for a hardened, non-root, read-only container."""
    return {
        "read_only": True,
        "capabilities": docker.ContainerCapabilitiesArgs(drops=["ALL"]),
        "security_opts": ["no-new-privileges:true"],
        "memory": memory_mb,
        # No swap: a swapping cache is slower than a cache miss.
        "memory_swap": memory_mb,
        "restart": settings.restart_policy,
        "log_driver": "json-file",
        "log_opts": {"max-size": settings.log_max_size, "max-file": str(settings.log_max_files)},
    }


def lifecycle_args(settings: Settings, health_tests: list[str]) -> dict[str, Any]:
    """What every Redis server container (a node or a Sentinel) shares beyond hardening:
    its healthcheck and `wait` for it, and a graceful stop. (Its config file and start
    script reach its volume through its files container: components/files.py.)"""
    return {
        "healthcheck": docker.ContainerHealthcheckArgs(
            tests=health_tests,
            interval=f"{settings.healthcheck_interval}s",
            timeout=f"{settings.healthcheck_timeout}s",
            retries=settings.healthcheck_retries,
            start_period=f"{settings.healthcheck_start_period}s",
        ),
        # `pulumi up` returns only once the healthcheck passes.
        "wait": True,
        "wait_timeout": settings.healthcheck_start_period
        + settings.healthcheck_interval * (settings.healthcheck_retries + 1),
        # Redis writes its snapshot on SIGTERM; give it time before SIGKILL: docker stop
        # uses stop_timeout, the provider's delete and replace destroy_grace_seconds.
        "stop_signal": "SIGTERM",
        "stop_timeout": settings.stop_grace_period,
        "destroy_grace_seconds": settings.stop_grace_period,
        "must_run": True,
    }
