"""Deploy a stack with Pulumi's Automation API, and check the host first (doctor).

The backend is the local file backend under `.pulumi-state/` unless PULUMI_BACKEND_URL,
a Pulumi Cloud token, or an existing `pulumi login` says otherwise. Previews and updates
run the policy pack with the stack's pack config.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bizosaas_redis.settings import PROJECT_ROOT, Settings

from .engine import EngineError, ensure_engine

STATE_DIR = PROJECT_ROOT / ".pulumi-state"
POLICY_PACK = PROJECT_ROOT / "policies"
INSTALL_HINT = "install it: curl -fsSL https://get.pulumi.com | sh (https://www.pulumi.com/docs/install/)"


class DeployError(RuntimeError):
    pass


def require_cli() -> str:
    found = shutil.which("pulumi")
    if found is None:
        raise DeployError(f"the Pulumi CLI is not installed; {INSTALL_HINT}")
    return found


def backend_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for the Pulumi CLI: the file backend by default, a passphrase for it."""
    environ = dict(os.environ if environ is None else environ)
    env: dict[str, str] = {}
    credentials = Path(environ.get("PULUMI_HOME", Path.home() / ".pulumi")) / "credentials.json"
    current = json.loads(credentials.read_text() or "{}").get("current") if credentials.exists() else None
    backend = environ.get("PULUMI_BACKEND_URL") or current
    if not backend and not environ.get("PULUMI_ACCESS_TOKEN"):
        STATE_DIR.mkdir(exist_ok=True)
        backend = f"file://{STATE_DIR}"
        env["PULUMI_BACKEND_URL"] = backend
    # Every self-managed backend (file://, s3://, gs://, azblob://) encrypts with a passphrase.
    self_managed = bool(backend) and not backend.startswith("https://")
    if self_managed and not (environ.get("PULUMI_CONFIG_PASSPHRASE") or environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")):
        raise DeployError(
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
        raise DeployError(f"refusing to {action} production without --yes (no terminal to ask)")
    answer = ask(f"{action} production stack {settings.stack!r}? Type the stack name to confirm: ")
    if answer.strip() != settings.stack:
        raise DeployError(f"{action} of {settings.stack} cancelled")


def select_stack(stack: str, create: bool = True) -> Any:
    """The stack in the chosen backend; created on first use unless `create` is False."""
    from pulumi import automation as auto

    require_cli()
    opts = auto.LocalWorkspaceOptions(work_dir=str(PROJECT_ROOT), env_vars=backend_env())
    select = auto.create_or_select_stack if create else auto.select_stack
    return select(stack_name=stack, work_dir=str(PROJECT_ROOT), opts=opts)


def stack_outputs(stack: str) -> dict[str, Any]:
    """All outputs of a deployed stack, secrets in clear. Never print the result."""
    return {k: v.value for k, v in select_stack(stack, create=False).outputs().items()}


def policy_args(stack: str) -> dict[str, list[str]]:
    config = POLICY_PACK / "config" / f"{stack}.json"
    return {"policy_packs": [str(POLICY_PACK)], "policy_pack_configs": [str(config)] if config.exists() else []}


def run(
    action: str,
    settings: Settings,
    yes: bool = False,
    show_secrets: bool = False,
    on_output: Callable[[str], Any] = print,
) -> dict[str, Any] | None:
    """preview, up, destroy or outputs for the stack; outputs are returned (masked unless asked)."""
    if action in ("up", "destroy"):
        confirm_production(settings, action, yes, sys.stdin.isatty())
    stack = select_stack(settings.stack, create=action in ("preview", "up"))
    if action == "preview":
        stack.preview(on_output=on_output, diff=True, **policy_args(settings.stack))
        return None
    if action == "up":
        stack.up(on_output=on_output, **policy_args(settings.stack))
        return None
    if action == "destroy":
        stack.destroy(on_output=on_output)
        return None
    return {k: (v.value if show_secrets or not v.secret else "[secret]") for k, v in stack.outputs().items()}


# --- doctor: host prerequisites ------------------------------------------------------


@dataclass
class Check:
    name: str
    status: str  # OK | WARN | FAIL
    detail: str


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def doctor(settings: Settings) -> list[Check]:
    checks: list[Check] = []
    try:
        client = ensure_engine(start=False)
        info = client.info()
        checks.append(Check("docker engine", "OK", f"{info.get('ServerVersion')} answers"))
    except EngineError as exc:
        client, info = None, {}
        checks.append(Check("docker engine", "FAIL", f"{exc}; start it: systemctl start docker"))

    overcommit = _read("/proc/sys/vm/overcommit_memory")
    checks.append(
        Check(
            "vm.overcommit_memory",
            "OK" if overcommit == "1" else "WARN",
            "1"
            if overcommit == "1"
            else f"{overcommit}: BGSAVE/AOF rewrite forks may fail; run "
            "sysctl vm.overcommit_memory=1 and add it to /etc/sysctl.d/99-redis.conf",
        )
    )

    thp = _read("/sys/kernel/mm/transparent_hugepage/enabled") or "unknown"
    checks.append(
        Check(
            "transparent huge pages",
            "WARN" if "[always]" in thp else "OK",
            f"{thp}: latency spikes and memory use after fork; run "
            "echo madvise > /sys/kernel/mm/transparent_hugepage/enabled"
            if "[always]" in thp
            else thp,
        )
    )

    root = info.get("DockerRootDir", "/var/lib/docker")
    try:
        free = shutil.disk_usage(root).free
        # An RDB snapshot and an AOF rewrite can each be as large as the dataset.
        need = 2 * settings.maxmemory
        status = "OK" if free >= need else ("WARN" if free >= settings.maxmemory else "FAIL")
        checks.append(
            Check(
                "free disk for the data volume",
                status,
                f"{free / 1024**3:.1f} GB free in {root}; want ≥ {need / 1024**3:.1f} GB "
                "(2 × maxmemory for RDB plus AOF rewrite)",
            )
        )
    except OSError as exc:
        checks.append(Check("free disk for the data volume", "WARN", f"cannot read {root}: {exc}"))

    if settings.network_external:
        if client is None:
            checks.append(Check(f"network {settings.network_name}", "FAIL", "Docker is not reachable"))
        elif client.networks.list(names=[settings.network_name]):
            checks.append(Check(f"network {settings.network_name}", "OK", "exists (external)"))
        else:
            checks.append(
                Check(
                    f"network {settings.network_name}",
                    "FAIL",
                    f"missing; Dokploy creates it, or: docker network create {settings.network_name}",
                )
            )
    else:
        checks.append(Check(f"network {settings.network_name}", "OK", "created by the stack"))

    if settings.tls_enabled:
        checks.append(tls_files_check(Path(settings.tls_certs_dir or "")))

    pulumi = shutil.which("pulumi")
    checks.append(Check("pulumi CLI", "OK" if pulumi else "WARN", pulumi or f"missing; {INSTALL_HINT}"))
    return checks


def tls_files_check(folder: Path, uid: int = 999, gid: int = 1000) -> Check:
    """The certificate files exist and Redis (uid 999) can read them through the bind mount."""
    problems = []
    for name in ("tls.crt", "tls.key", "ca.crt"):
        path = folder / name
        if not path.is_file():
            problems.append(f"{name} missing")
            continue
        st = path.stat()
        readable = (
            (st.st_uid == uid and st.st_mode & 0o400)
            or (st.st_gid == gid and st.st_mode & 0o040)
            or (st.st_mode & 0o004 and name != "tls.key")
        )
        if not readable:
            problems.append(f"{name} unreadable by uid {uid}")
    if problems:
        return Check(
            "TLS files",
            "FAIL",
            f"{folder}: {', '.join(problems)}; run chown {uid}:{gid} {folder}/* && chmod 0600 {folder}/tls.key",
        )
    return Check("TLS files", "OK", f"{folder}: readable by the redis user")


def doctor_table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{'check'.ljust(width)}  status  detail", f"{'-' * width}  ------  ------"]
    lines += [f"{c.name.ljust(width)}  {c.status.ljust(6)}  {c.detail}" for c in checks]
    return "\n".join(lines)
