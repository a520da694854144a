"""A stack of this program deployed from a Pulumi project folder of its own.

The tests and benchmarks deploy the real stack files' settings under their own names
(container, volume, network, port) with the real engine, exactly as `bizosaas-redis up`
does, without touching the checkout: the folder holds a Pulumi.yaml that runs the
checkout's program (`infra/`) in the checkout's venv, the stack file (the real one's
`redis:` keys with the sandbox's overrides), and a file backend with its own passphrase.
`bizosaas-redis` finds the folder through BIZOSAAS_PROJECT_DIR (settings.project_dir).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import yaml

from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings import (
    NAMESPACE,
    PROJECT_DIR_VARIABLE,
    Settings,
    build_settings,
    instances,
    load_yaml,
    project_dir,
    read_stack_config,
    stack_file,
)
from bizosaas_redis_ops.deploy import pulumi_stack

CLI = Path(sys.executable).parent / "bizosaas-redis"
# `pulumi up` of a production stack with a Sentinel topology can take minutes.
COMMAND_TIMEOUT = 900


class SandboxError(BizosaasRedisError):
    pass


def parse_assignments(items: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """KEY=VALUE (YAML values, as in a stack file) -> {key: value}."""
    found: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SandboxError(f"a setting takes KEY=VALUE, got {item!r}")
        found[key.removeprefix(f"{NAMESPACE}:")] = load_yaml(value)
    return found


def settings_of(stack: str, overrides: dict[str, Any], source: Path | None = None) -> Settings:
    """The settings of a real stack file (or `source`) with `overrides`."""
    return build_settings({**read_stack_config(source or stack_file(stack)), **overrides}, stack)


@dataclass
class Project:
    """A Pulumi project folder running the checkout's program, with its own file backend."""

    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bizosaas-sandbox-")))
    # The project whose program, venv and stack files it runs: the one the command runs in.
    origin: Path = field(default_factory=project_dir)
    passphrase: str = field(default_factory=lambda: f"sandbox-{secrets.token_hex(12)}")

    def env(self) -> dict[str, str]:
        """What `bizosaas-redis` and `pulumi` need to work on this folder's stacks."""
        return {
            PROJECT_DIR_VARIABLE: str(self.folder),
            "PULUMI_BACKEND_URL": f"file://{self.folder / pulumi_stack.STATE_DIR_NAME}",
            "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
            **pulumi_stack.PINNED,
        }

    def write(self, stack: str, values: dict[str, Any]) -> None:
        """Pulumi.yaml (the checkout's program and venv) and the stack's file; the stack
        file keeps what Pulumi added to it (its encryption salt, secrets set through it)."""
        project = load_yaml((self.origin / "Pulumi.yaml").read_text())
        project["main"] = str(self.origin / project.get("main", "."))
        project["runtime"]["options"]["virtualenv"] = str(Path(sys.executable).parent.parent)
        (self.folder / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
        (self.folder / pulumi_stack.STATE_DIR_NAME).mkdir(exist_ok=True)
        path = stack_file(stack, self.folder)
        document = (load_yaml(path.read_text()) or {}) if path.exists() else {}
        # Secrets set through Pulumi (`pulumi config set --secret`, a rotation) stay.
        kept = {k: v for k, v in (document.get("config") or {}).items() if isinstance(v, dict) and "secure" in v}
        document["config"] = kept | {f"{NAMESPACE}:{key}": value for key, value in values.items()}
        path.write_text(yaml.safe_dump(document, sort_keys=False))

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Sandbox:
    """`stack` (a real stack file's name, or `source`, another stack file) with
    `overrides`, in a project folder of its own unless one is shared (the tests' three
    stacks share one)."""

    stack: str
    overrides: dict[str, Any] = field(default_factory=dict)
    project: Project = field(default_factory=Project)
    source: Path | None = None
    last_output: str = ""
    _outputs: dict[str, Any] | None = None  # read once per update

    @property
    def port(self) -> int:
        return self.settings().host_port

    @property
    def values(self) -> dict[str, Any]:
        return {**read_stack_config(self.source or stack_file(self.stack, self.project.origin)), **self.overrides}

    def settings(self) -> Settings:
        return build_settings(self.values, self.stack)

    def env(self) -> dict[str, str]:
        return self.project.env()

    def write(self) -> None:
        self.project.write(self.stack, self.values)

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """This process works on the sandbox (outputs, state) for the block's duration."""
        saved = {key: os.environ.get(key) for key in self.env()}
        os.environ.update(self.env())
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    # --- what users run --------------------------------------------------------------------

    def run(self, *args: str, check: bool = True, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess:
        """`bizosaas-redis ARGS` on this sandbox, as a user runs it."""
        self.write()
        result = subprocess.run(
            [str(CLI), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **self.env()},
            stdin=subprocess.DEVNULL,
        )
        self.last_output = result.stdout + result.stderr
        if check and result.returncode != 0:
            # Pulumi's own account of what failed, else the end of the output.
            shown = self.last_output.partition("Diagnostics:")[2].partition("\nOutputs:")[0] or self.last_output
            raise SandboxError(f"bizosaas-redis {' '.join(args)} failed ({result.returncode}):\n{shown[-6000:]}")
        return result

    def up(self, *changes: str, **kwargs: Any) -> str:
        """`bizosaas-redis up` (with the policy pack; no verify) after applying `changes`
        (KEY=VALUE); returns what it printed."""
        self.overrides.update(parse_assignments(changes))
        self._outputs = None
        self.run("up", "--stack", self.stack, "--yes", "--no-verify", **kwargs)
        return self.last_output

    def attempt(self, *changes: str) -> subprocess.CompletedProcess:
        """`bizosaas-redis up` with `changes` that may be refused: kept only if it succeeds."""
        before = dict(self.overrides)
        self.overrides.update(parse_assignments(changes))
        self._outputs = None
        result = self.run("up", "--stack", self.stack, "--yes", "--no-verify", check=False)
        if result.returncode != 0:
            self.overrides = before
            self.write()
        return result

    def destroy(self, check: bool = True) -> str:
        self._outputs = None
        self.run("destroy", "--stack", self.stack, "--yes", check=check)
        return self.last_output

    def workspace_stack(self) -> Any:
        """The Automation API's stack, for what the CLI does not offer (refresh, export)."""
        with self.active():
            return pulumi_stack.select_stack(self.stack, create=False)

    def outputs(self) -> dict[str, Any]:
        """Every output, secrets in clear. Never print the result."""
        if self._outputs is None:
            with self.active():
                self._outputs = pulumi_stack.stack_outputs(self.stack)
        return self._outputs

    def close(self, client: docker.DockerClient | None = None) -> None:
        """Destroy the stack, then remove what `destroy` retains (its volumes); the project
        folder goes with its last stack (`project.remove()`)."""
        if stack_file(self.stack, self.project.folder).exists():
            self.destroy(check=False)
        if client is not None:
            for settings in instances(self.settings()):
                names = [settings.volume_name, f"{settings.volume_name}_exporter", settings.socket_volume_name]
                for name in names:
                    with contextlib.suppress(docker.errors.NotFound):
                        client.volumes.get(name).remove(force=True)
