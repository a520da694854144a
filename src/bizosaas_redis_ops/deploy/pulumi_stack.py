"""Preview, update, destroy and read a stack with Pulumi's Automation API.

The CLI is the one scripts/install-pulumi linked into the venv (else the one on PATH).
The backend is the local file backend under `.pulumi-state/` of the project folder unless
PULUMI_BACKEND_URL, a Pulumi Cloud token, or an existing `pulumi login` says otherwise.
Previews and updates run the policy pack with the stack's pack config.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bizosaas_redis.constants import CONTAINER
from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings import NAMESPACE, PROJECT_FILE, SECRET_KEYS, Settings, load_yaml, project_dir

STATE_DIR_NAME = ".pulumi-state"
# Where scripts/install-pulumi links the CLI and its language host.
VENV_BIN = Path(sys.executable).parent
INSTALL_HINT = "run scripts/install-pulumi (docs/how-to/install-pulumi-offline.md)"
# Chosen by the caller's environment and kept by each workspace made from it.
CARRIED = ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE")
# No registry is asked: no update check, no plugin download (the plugins are installed); and
# the program runs on exactly uv.lock: Pulumi's uv toolchain starts it with `uv run`, which
# would otherwise re-lock a lock older than pyproject.toml, silently.
PINNED = {
    "PULUMI_SKIP_UPDATE_CHECK": "true",
    "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
    "UV_LOCKED": "1",
}


class PulumiStackError(BizosaasRedisError):
    pass


def search_path(environ: Mapping[str, str] | None = None) -> str:
    """PATH with the venv's bin first: the CLI finds its language host there."""
    path = (os.environ if environ is None else environ).get("PATH", os.defpath)
    return os.pathsep.join([str(VENV_BIN), path])


def require_cli() -> str:
    found = shutil.which("pulumi", path=search_path())
    if found is None:
        raise PulumiStackError(f"the Pulumi CLI is not installed; {INSTALL_HINT}")
    return found


def backend_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the Pulumi CLI: offline, the file backend by default, a passphrase for
    it. It carries the backend and passphrase chosen now, so that a workspace made with it
    keeps them."""
    environ = dict(os.environ if environ is None else environ)
    env: dict[str, str] = {**PINNED, "PATH": search_path(environ)}
    env |= {key: environ[key] for key in CARRIED if environ.get(key)}
    credentials = Path(environ.get("PULUMI_HOME", Path.home() / ".pulumi")) / "credentials.json"
    current = json.loads(credentials.read_text() or "{}").get("current") if credentials.exists() else None
    backend = environ.get("PULUMI_BACKEND_URL") or current
    if not backend and not environ.get("PULUMI_ACCESS_TOKEN"):
        backend = f"file://{project_dir() / STATE_DIR_NAME}"
        env["PULUMI_BACKEND_URL"] = backend
    # Every self-managed backend (file://, s3://, gs://, azblob://) encrypts with a passphrase.
    self_managed = bool(backend) and not str(backend).startswith("https://")
    if self_managed and not (environ.get("PULUMI_CONFIG_PASSPHRASE") or environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")):
        raise PulumiStackError(
            "the local file backend encrypts secrets with a passphrase: set PULUMI_CONFIG_PASSPHRASE "
            "(or PULUMI_CONFIG_PASSPHRASE_FILE), or log in to Pulumi Cloud (pulumi login)"
        )
    return env


def confirm_production(
    settings: Settings, action: str, yes: bool, interactive: bool, ask: Callable[[str], str] = input
) -> None:
    """Production changes need --yes, or the stack's name typed at a terminal."""
    if settings.environment != "production" or yes:
        return
    if not interactive:
        raise PulumiStackError(f"refusing to {action} production without --yes (no terminal to ask)")
    answer = ask(f"{action} production stack {settings.stack!r}? Type the stack name to confirm: ")
    if answer.strip() != settings.stack:
        raise PulumiStackError(f"{action} of {settings.stack} cancelled")


def select_stack(stack: str, create: bool = True) -> Any:
    """The stack in the chosen backend; created on first use unless `create` is False."""
    from pulumi import automation as auto

    cli = require_cli()
    env = backend_env()
    folder = project_dir()
    if env.get("PULUMI_BACKEND_URL") == f"file://{folder / STATE_DIR_NAME}":
        (folder / STATE_DIR_NAME).mkdir(exist_ok=True)
    command = auto.PulumiCommand(root=str(Path(cli).parent.parent))  # root/bin/pulumi
    opts = auto.LocalWorkspaceOptions(work_dir=str(folder), env_vars=env, pulumi_command=command)
    select = auto.create_or_select_stack if create else auto.select_stack
    return select(stack_name=stack, work_dir=str(folder), opts=opts)


def stack_outputs(stack: str) -> dict[str, Any]:
    """All outputs of a deployed stack, secrets in clear. Never print the result."""
    return {k: v.value for k, v in select_stack(stack, create=False).outputs().items()}


def set_config(stack: str, key: str, value: str, secret: bool = False, path: bool = False) -> None:
    """`pulumi config set [--secret] [--path] KEY VALUE --stack STACK`: written into the
    stack file (a secret encrypted with the stack's key)."""
    from pulumi import automation as auto

    select_stack(stack).set_config(key, auto.ConfigValue(value=value, secret=secret), path=path)


def remove_config(stack: str, key: str) -> None:
    """`pulumi config rm KEY --stack STACK`."""
    select_stack(stack, create=False).remove_config(key)


def secret_config(stack: str) -> dict[str, str]:
    """The values the stack's config sets for its secret keys (`adminPassword`, ...: keys
    without the namespace), decrypted: for checks against the running servers, never printed."""
    found = select_stack(stack, create=False).get_all_config()
    given = {key.removeprefix(f"{NAMESPACE}:"): item.value for key, item in found.items()}
    return {key: value for key, value in given.items() if key in SECRET_KEYS}


def existing_outputs(stack: str) -> dict[str, Any] | None:
    """The outputs of a stack that exists in the backend, or None before its first `up`."""
    from pulumi import automation as auto

    try:
        return stack_outputs(stack)
    except auto.StackNotFoundError:
        return None


def stack_resources(stack: str) -> list[dict[str, Any]]:
    """The stack's resources as its state holds them (type, urn, parent, inputs, outputs).
    The Automation API exports with secrets decrypted: never print the result."""
    return list(select_stack(stack, create=False).export_stack().deployment.get("resources") or [])


def policy_pack_dir(folder: Path | None = None) -> Path:
    """The policy pack beside the program the project runs (its Pulumi.yaml's `main`,
    `infra/`): the checkout's, also for a sandbox's project folder."""
    folder = folder or project_dir()
    project = load_yaml((folder / PROJECT_FILE).read_text()) or {}
    return (folder / project.get("main", ".")).resolve().parent / "policies"


def policy_args(stack: str) -> dict[str, list[str]]:
    pack = policy_pack_dir()
    config = pack / "config" / f"{stack}.json"
    return {"policy_packs": [str(pack)], "policy_pack_configs": [str(config)] if config.exists() else []}


def run(
    action: str,
    settings: Settings,
    yes: bool = False,
    show_secrets: bool = False,
    on_output: Callable[[str], Any] = print,
    expect_no_changes: bool = False,
) -> dict[str, Any] | None:
    """preview, up, destroy or outputs for the stack; outputs are returned (masked unless asked).
    `expect_no_changes`: a preview that finds changes fails (drift checks)."""
    if action in ("up", "destroy"):
        confirm_production(settings, action, yes, sys.stdin.isatty())
    stack = select_stack(settings.stack, create=action in ("preview", "up"))
    if action == "preview":
        stack.preview(
            on_output=on_output, diff=True, expect_no_changes=expect_no_changes, **policy_args(settings.stack)
        )
        return None
    if action == "up":
        stack.up(on_output=on_output, **policy_args(settings.stack))
        return None
    if action == "destroy":
        # With the program: the sentinel topology's before-delete hooks (a primary hands its
        # role over) exist only while it runs, and Pulumi refuses to skip them.
        stack.destroy(on_output=on_output, run_program=True)
        return None
    return masked_outputs(settings.stack, show_secrets)


def up_all_but(settings: Settings, container_name: str, on_output: Callable[[str], Any] = print) -> str:
    """`up` of everything the stack holds except the container named `container_name` and
    what depends on it (the adoption's preparation, while the old container still runs
    under that name); returns that container's URN, as the preview (with the policy pack)
    showed it."""
    from pulumi.automation import EngineEvent

    stack = select_stack(settings.stack, create=True)
    urns: list[str] = []

    def seen(event: EngineEvent) -> None:
        pre = event.resource_pre_event
        if pre is None or pre.metadata.type != CONTAINER or pre.metadata.new is None:
            return
        if (pre.metadata.new.inputs or {}).get("name") == container_name:
            urns.append(pre.metadata.urn)

    stack.preview(on_output=on_output, on_event=seen, diff=True, **policy_args(settings.stack))
    if len(urns) != 1:
        raise PulumiStackError(
            f"the preview of stack {settings.stack} shows {len(urns)} containers named {container_name}, "
            "where adoption expects one; nothing was changed"
        )
    # The policy pack judged the whole program on the preview above. On an update with
    # --exclude, Pulumi shows it the excluded container without its inputs (no user, no
    # limits), which every hardening rule refuses; the after-stop `up` runs the pack again.
    stack.up(on_output=on_output, exclude=urns, exclude_dependents=True)
    return urns[0]


# A resource's header in the engine's Diagnostics section: `  docker:index/container:Container (redis):`.
_DIAGNOSED = re.compile(r"^  (\S+ \(.+\)):$")
# A mandatory policy violation in the engine's Policies section: `- [mandatory]  rule  (type: name)`.
_REFUSED_BY_POLICY = re.compile(r"^\s*- \[mandatory\]\s+(\S+)\s+\((.+)\)$")


def engine_errors(failure: BaseException) -> str:
    """What the engine said went wrong, in one line: each `error:` of its Diagnostics with
    the resource it is under (the Automation API's message puts them in stdout, and leaves
    stderr empty when a resource failed); else each mandatory policy violation; else the
    last line it printed."""
    text = str(failure)
    lines = text.replace("\n stderr: ", "\n").splitlines()
    found: list[str] = []
    resource = ""
    for line in lines:
        header = _DIAGNOSED.match(line)
        if header:
            resource = header.group(1)
            continue
        message = line.strip().removeprefix("error:").strip() if line.strip().startswith("error:") else ""
        # The stack's own "update failed" only repeats that something above failed.
        if message and not (resource.startswith("pulumi:pulumi:Stack") and message == "update failed"):
            one = f"{resource}: {message}" if resource else message
            found += [one] if one not in found else []
    if found:
        return "; ".join(found)
    refused = [f"policy {m.group(1)} refused {m.group(2)}" for line in lines if (m := _REFUSED_BY_POLICY.match(line))]
    if refused:
        return "; ".join(dict.fromkeys(refused))
    printed = [line.strip() for line in lines if line.strip() and line.strip() not in ("stdout:", "stderr:")]
    return printed[-1] if printed else type(failure).__name__


def masked_outputs(stack: str, show_secrets: bool = False) -> dict[str, Any]:
    found = select_stack(stack, create=False).outputs()
    return {k: (v.value if show_secrets or not v.secret else "[secret]") for k, v in found.items()}
