"""Identity and image: which environment, which server, which container."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, Field

from bizosaas_redis.settings.values import MODEL_CONFIG, DockerName, ImageRef, Problems, YamlWord

if TYPE_CHECKING:
    from bizosaas_redis.settings.model import Settings


class IdentitySettings(BaseModel):
    model_config = MODEL_CONFIG

    environment: Literal["dev", "staging", "production"] = Field(
        "dev", description="Environment class; production turns on the strictest rules."
    )
    container_name: DockerName | None = Field(None, description="Container name. Default: `bizosaas-redis-<stack>`.")
    flavour: Annotated[Literal["redis", "valkey"], YamlWord] = Field(
        "redis",
        description="Server: `redis` or `valkey` (BSD-3 licensed; reads RDB up to format 11, so data written "
        "by Redis 7.4 or later cannot move to it).",
    )
    image: ImageRef = Field(
        "redis:7-alpine", description="Server image of the flavour; pin an exact version or digest in production."
    )

    @property
    def licence(self) -> str:
        """The server's licence, from the flavour and the version its tag names."""
        if self.flavour == "valkey":
            return "BSD-3-Clause"
        found = re.search(r":v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", self.image.split("@")[0].rsplit("/", 1)[-1])
        if found is None:
            return "unknown (see the image's version)"
        version = tuple(int(part) for part in found.groups() if part is not None)
        if version[0] >= 8:
            return "RSALv2 OR SSPLv1 OR AGPLv3"
        if version[:1] == (7,) and len(version) == 1:
            return "RSALv2 OR SSPLv1 (7.4 and later; BSD-3-Clause up to 7.2.4)"
        return "RSALv2 OR SSPLv1" if version[:2] >= (7, 4) else "BSD-3-Clause"


def check(s: Settings, problems: Problems) -> None:
    if s.flavour not in s.image.split("@")[0].rsplit("/", 1)[-1]:
        problems.add("image", f"is not a {s.flavour} image (flavour {s.flavour})", "flavour")
