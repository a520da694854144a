"""The Pulumi project folder and its stack files (`Pulumi.<stack>.yaml`), read with no
Pulumi engine, as Pulumi reads them."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings.keys import NAMESPACE
from bizosaas_redis.settings.loading import SettingsError, build_settings
from bizosaas_redis.settings.model import Settings

# The Pulumi project folder when it is not the working directory (or one above it), as for
# the tests, which deploy the real stack files' settings under their own names from a copy.
PROJECT_DIR_VARIABLE = "BIZOSAAS_PROJECT_DIR"
PROJECT_FILE = "Pulumi.yaml"


class NoProject(BizosaasRedisError):
    """No Pulumi project where the command runs."""


def find_project_dir(start: Path | None = None) -> Path | None:
    """$BIZOSAAS_PROJECT_DIR, else the working directory or the nearest folder above it
    with a Pulumi.yaml (as the pulumi command looks for its project)."""
    if os.environ.get(PROJECT_DIR_VARIABLE):
        return Path(os.environ[PROJECT_DIR_VARIABLE])
    here = (start or Path.cwd()).resolve()
    return next((folder for folder in (here, *here.parents) if (folder / PROJECT_FILE).is_file()), None)


def project_dir() -> Path:
    found = find_project_dir()
    if found is None:
        raise NoProject(
            f"no Pulumi project in {Path.cwd()} or above it (no {PROJECT_FILE}): run in the project folder "
            f"or set {PROJECT_DIR_VARIABLE}"
        )
    return found


def stack_file(stack: str, root: Path | None = None) -> Path:
    return (root or project_dir()) / f"Pulumi.{stack}.yaml"


class _Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 booleans (true/false only), as Pulumi reads stack files: `no` stays a word."""


_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Yaml12Loader)


def read_stack_config(path: Path) -> dict[str, Any]:
    """The `redis:` keys of a stack file, namespace stripped. Secure values stay ciphertext."""
    if not path.exists():
        available = sorted(p.name for p in path.parent.glob("Pulumi.*.yaml"))
        raise SettingsError(str(path), [f"no such stack file; available: {', '.join(available)}"])
    try:
        document = load_yaml(path.read_text()) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SettingsError(path.name, [f"not valid YAML: {where}{problem}"]) from None
    if not isinstance(document, dict) or not isinstance(document.get("config") or {}, dict):
        raise SettingsError(path.name, ["not a Pulumi stack file: expected a mapping with a `config:` mapping"])
    config = document.get("config") or {}
    values: dict[str, Any] = {}
    for key, value in config.items():
        namespace, _, name = key.partition(":")
        if namespace == NAMESPACE and name:
            values[name] = value
    return values


def load_stack_file(stack: str, root: Path | None = None) -> Settings:
    """Settings of `Pulumi.<stack>.yaml`, validated with no Pulumi engine."""
    path = stack_file(stack, root)
    return build_settings(read_stack_config(path), stack, source=path.name)


def available_stacks(root: Path | None = None) -> list[str]:
    """The project's stacks; none outside a project."""
    folder = root or find_project_dir()
    if folder is None:
        return []
    return sorted(p.name.split(".")[1] for p in folder.glob("Pulumi.*.yaml"))
