"""The container's lifecycle: restarts, stopping, health, logs, labels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, Field

from bizosaas_redis.settings.values import MODEL_CONFIG, JsonDict, Problems, YamlWord, online

if TYPE_CHECKING:
    from bizosaas_redis.settings.model import Settings


class LifecycleSettings(BaseModel):
    model_config = MODEL_CONFIG

    restart_policy: Annotated[Literal["no", "always", "unless-stopped", "on-failure"], YamlWord] = Field(
        "unless-stopped", description="Docker restart policy."
    )
    stop_grace_period: int = Field(
        30,
        ge=1,
        le=3600,
        description="Seconds Redis gets to write its snapshot when stopped, replaced or destroyed, before SIGKILL.",
    )
    healthcheck_interval: int = Field(10, ge=1, le=3600, description="Healthcheck interval (s).")
    healthcheck_timeout: int = Field(5, ge=1, le=3600, description="Healthcheck timeout (s).")
    healthcheck_retries: int = Field(5, ge=1, le=100, description="Failures before unhealthy.")
    healthcheck_start_period: int = Field(10, ge=0, le=3600, description="Grace period after start (s).")
    log_max_size: Annotated[str, Field(pattern=r"^\d+[kmg]$")] = Field(
        "10m", description="json-file log rotation size."
    )
    log_max_files: int = Field(3, ge=1, le=100, description="Rotated log files kept.")
    loglevel: Literal["debug", "verbose", "notice", "warning"] = Field(
        "notice", description="Redis log level.", json_schema_extra=online("loglevel")
    )
    labels: Annotated[dict[str, str], JsonDict] = Field(default_factory=dict, description="Extra container labels.")


def check(s: Settings, problems: Problems) -> None:
    if s.healthcheck_timeout > s.healthcheck_interval:
        problems.add("healthcheck_timeout", "must not exceed healthcheckInterval", "healthcheck_interval")
