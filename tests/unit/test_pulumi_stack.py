"""bizosaas-redis preview/up/destroy: arguments, backend choice, production confirmation, missing CLI."""

from __future__ import annotations

import os
import re
import signal
import subprocess

import pytest

from bizosaas_redis.settings import load_stack_file, load_yaml
from bizosaas_redis_ops.deploy import pulumi_stack
from conftest import CLI, ROOT


def run_script(*args: str, path: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path}
    return subprocess.run(
        [str(CLI), *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def test_help_lists_every_action():
    result = subprocess.run([str(CLI), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for word in ("preview", "up", "destroy", "outputs", "doctor"):
        assert re.search(rf"^  {word} ", result.stdout, re.M), word
    result = subprocess.run([str(CLI), "up", "--help"], capture_output=True, text=True)
    assert "--yes" in result.stdout and "--no-verify" in result.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["up"], "Error: Missing option '--stack'. Choose from:"),
        (["launch", "--stack", "dev"], "Error: No such command 'launch'."),
        (
            ["up", "--stack", "qa"],
            "Error: Invalid value for '--stack': 'qa' is not one of 'dev', 'production', 'staging'.",
        ),
        (["preview", "--stack"], "Error: Option '--stack' requires an argument."),
    ],
)
def test_bad_arguments_are_usage_errors(argv, message):
    result = subprocess.run([str(CLI), *argv], capture_output=True, text=True)
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.startswith("Error:")] == [message]


def test_missing_pulumi_cli_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(pulumi_stack, "VENV_BIN", tmp_path)  # no linked CLI, and a PATH with none
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pulumi_stack.PulumiStackError) as raised:
        pulumi_stack.require_cli()
    assert str(raised.value) == f"the Pulumi CLI is not installed; {pulumi_stack.INSTALL_HINT}"


def test_the_cli_linked_into_the_venv_comes_first_and_nothing_asks_a_registry(tmp_path):
    env = pulumi_stack.backend_env({"PULUMI_HOME": str(tmp_path), "PULUMI_ACCESS_TOKEN": "x", "PATH": "/usr/bin"})
    assert env["PATH"] == f"{pulumi_stack.VENV_BIN}:/usr/bin"
    assert env["PULUMI_SKIP_UPDATE_CHECK"] == env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"
    # Pulumi's uv toolchain runs the program with `uv run`: on exactly uv.lock, never a re-lock.
    assert env["UV_LOCKED"] == "1" and (pulumi_stack.VENV_BIN / "uv").exists()


def test_production_up_without_yes_refuses_before_anything(tmp_path):
    result = run_script("up", "--stack", "production", path=str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == "bizosaas-redis up: refusing to up production without --yes (no terminal to ask)"


def test_confirmation_asks_for_the_stack_name():
    prod, dev = load_stack_file("production"), load_stack_file("dev")
    pulumi_stack.confirm_production(prod, "up", yes=True, interactive=False)
    pulumi_stack.confirm_production(dev, "destroy", yes=False, interactive=False)
    pulumi_stack.confirm_production(prod, "up", yes=False, interactive=True, ask=lambda _: "production")
    with pytest.raises(pulumi_stack.PulumiStackError, match="cancelled"):
        pulumi_stack.confirm_production(prod, "destroy", yes=False, interactive=True, ask=lambda _: "yes")


def test_file_backend_by_default_and_it_needs_a_passphrase(tmp_path):
    home = {"PULUMI_HOME": str(tmp_path)}
    state_existed = (ROOT / ".pulumi-state").exists()
    env = pulumi_stack.backend_env({**home, "PULUMI_CONFIG_PASSPHRASE": "x"})
    assert env["PULUMI_BACKEND_URL"] == f"file://{ROOT / '.pulumi-state'}"
    assert (ROOT / ".pulumi-state").exists() == state_existed  # choosing a backend makes no folder
    with pytest.raises(pulumi_stack.PulumiStackError, match="PULUMI_CONFIG_PASSPHRASE"):
        pulumi_stack.backend_env(home)
    with pytest.raises(pulumi_stack.PulumiStackError, match="passphrase"):
        pulumi_stack.backend_env({**home, "PULUMI_BACKEND_URL": "s3://bucket/state"})


def test_pulumi_cloud_when_a_token_or_login_says_so(tmp_path):
    token = {"PULUMI_HOME": str(tmp_path), "PULUMI_ACCESS_TOKEN": "pul-x"}
    assert "PULUMI_BACKEND_URL" not in pulumi_stack.backend_env(token)
    (tmp_path / "credentials.json").write_text('{"current": "https://api.pulumi.com"}')
    assert "PULUMI_BACKEND_URL" not in pulumi_stack.backend_env({"PULUMI_HOME": str(tmp_path)})


def test_previews_and_updates_run_the_policy_pack_with_the_stack_config():
    args = pulumi_stack.policy_args("staging")
    assert args["policy_packs"] == [str(ROOT / "policies")]
    assert args["policy_pack_configs"] == [str(ROOT / "policies" / "config" / "staging.json")]


def test_outputs_without_a_pulumi_cli_say_how_to_install_it(tmp_path, monkeypatch):
    from bizosaas_redis_ops.deploy import outputs

    monkeypatch.setattr(pulumi_stack, "VENV_BIN", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(outputs.OutputsError, match=r"the Pulumi CLI is not installed; run scripts/install-pulumi"):
        outputs.load("dev")


def test_the_engines_own_errors_make_the_one_line():
    from pulumi.automation._cmd import CommandResult
    from pulumi.automation.errors import CommandError

    # The Automation API's message: the CLI's stdout (with its Diagnostics) and stderr.
    stdout = """Updating (staging):
 +  docker:index:RemoteImage redis-image creating (0s)
 +  docker:index:RemoteImage redis-image creating failed error: Unable to pull
Diagnostics:
  docker:index:RemoteImage (redis-image):
    error: Unable to read Docker image into resource: unable to pull image localhost/x:1

  pulumi:pulumi:Stack (bizosaas-redis-staging):
    error: update failed

Resources:
    1 unchanged
"""
    failed = CommandError(CommandResult(stdout=stdout, stderr="", code=255))
    assert pulumi_stack.engine_errors(failed) == (
        "docker:index:RemoteImage (redis-image): Unable to read Docker image into resource: "
        "unable to pull image localhost/x:1"
    )
    elsewhere = CommandError(CommandResult(stdout="", stderr="error: no stack named 'dev' found\n", code=255))
    assert pulumi_stack.engine_errors(elsewhere) == "no stack named 'dev' found"
    assert pulumi_stack.engine_errors(CommandError(CommandResult("", "", 1))) == "code: 1"
    # Refused by the policy pack: the program is stopped (its traceback ends in
    # KeyboardInterrupt, which says nothing); the violations are what went wrong.
    refused = """Policies:
    bizosaas-redis@v0.1.0 (local: policies)
        - [mandatory]  redis-non-root-user  (docker:index:Container: redis-container)
          The container runs as a non-root user.
        - [mandatory]  redis-read-only-root  (docker:index:Container: redis-container)
          The root filesystem is read-only.
        - [advisory]  redis-image-pinned  (docker:index:Container: redis-container)

Diagnostics:
  pulumi:pulumi:Stack (bizosaas-redis-staging):
    Traceback (most recent call last):
    KeyboardInterrupt
"""
    assert pulumi_stack.engine_errors(CommandError(CommandResult(stdout=refused, stderr="", code=255))) == (
        "policy redis-non-root-user refused docker:index:Container: redis-container; "
        "policy redis-read-only-root refused docker:index:Container: redis-container"
    )


def test_the_dynamic_provider_finds_the_venv_from_the_programs_folder():
    """The engine starts pulumi-resource-pulumi-python (the online settings' provider) in
    the program's folder, `main: infra/`, with Pulumi.yaml's virtualenv as it is written,
    relative (pulumi/pulumi#7061): infra/venv must lead to the project's venv, or every
    `up` of the checkout fails with "could not read plugin"."""
    project = load_yaml((ROOT / "Pulumi.yaml").read_text())
    options = project["runtime"]["options"]
    launcher = pulumi_stack.VENV_BIN / "pulumi-resource-pulumi-python"
    env = {
        "PATH": "/usr/bin:/bin",
        "PULUMI_RUNTIME_VIRTUALENV": options["virtualenv"],
        "PULUMI_RUNTIME_TOOLCHAIN": options["toolchain"],
    }
    started = subprocess.Popen(
        [str(launcher)],
        cwd=ROOT / project["main"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the script runs Python as its child: stop both
    )
    try:
        port = started.stdout.readline() if started.stdout else ""  # a plugin's first line: its port
    finally:
        os.killpg(started.pid, signal.SIGKILL)
        _, errors = started.communicate(timeout=10)
    assert port.strip().isdigit(), errors
