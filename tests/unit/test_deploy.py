"""scripts/deploy: argument handling, backend choice, production confirmation, missing CLI."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bizosaas_redis.settings import load_stack_file
from conftest import ROOT
from redisops import deploy


def run_script(*args: str, path: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": path}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "deploy"), *args],
        capture_output=True,
        text=True,
        env=env,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


def test_help_lists_every_action():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "deploy"), "--help"], capture_output=True, text=True
    )
    assert result.returncode == 0
    for word in ("preview", "up", "destroy", "outputs", "doctor", "--yes", "--no-verify", "PULUMI_CONFIG_PASSPHRASE"):
        assert word in result.stdout


@pytest.mark.parametrize(
    "argv",
    [["up"], ["launch", "--stack", "dev"], ["up", "--stack", "qa"], ["preview", "--stack"]],
)
def test_bad_arguments_are_usage_errors(argv):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "deploy"), *argv], capture_output=True, text=True)
    assert result.returncode == 2 and "usage: deploy" in result.stderr


def test_missing_pulumi_cli_is_one_line(tmp_path):
    result = run_script("preview", "--stack", "dev", path=str(tmp_path))  # a PATH with no pulumi
    assert result.returncode == 1
    assert result.stderr.strip() == f"deploy: the Pulumi CLI is not installed; {deploy.INSTALL_HINT}"


def test_production_up_without_yes_refuses_before_anything(tmp_path):
    result = run_script("up", "--stack", "production", path=str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.strip() == "deploy: refusing to up production without --yes (no terminal to ask)"


def test_confirmation_asks_for_the_stack_name():
    prod, dev = load_stack_file("production"), load_stack_file("dev")
    deploy.confirm_production(prod, "up", yes=True, interactive=False)
    deploy.confirm_production(dev, "destroy", yes=False, interactive=False)
    deploy.confirm_production(prod, "up", yes=False, interactive=True, ask=lambda _: "production")
    with pytest.raises(deploy.DeployError, match="cancelled"):
        deploy.confirm_production(prod, "destroy", yes=False, interactive=True, ask=lambda _: "yes")


def test_file_backend_by_default_and_it_needs_a_passphrase(tmp_path):
    home = {"PULUMI_HOME": str(tmp_path)}
    env = deploy.backend_env({**home, "PULUMI_CONFIG_PASSPHRASE": "x"})
    assert env == {"PULUMI_BACKEND_URL": f"file://{deploy.STATE_DIR}"}
    with pytest.raises(deploy.DeployError, match="PULUMI_CONFIG_PASSPHRASE"):
        deploy.backend_env(home)
    with pytest.raises(deploy.DeployError, match="passphrase"):
        deploy.backend_env({**home, "PULUMI_BACKEND_URL": "s3://bucket/state"})


def test_pulumi_cloud_when_a_token_or_login_says_so(tmp_path):
    assert deploy.backend_env({"PULUMI_HOME": str(tmp_path), "PULUMI_ACCESS_TOKEN": "pul-x"}) == {}
    (tmp_path / "credentials.json").write_text('{"current": "https://api.pulumi.com"}')
    assert deploy.backend_env({"PULUMI_HOME": str(tmp_path)}) == {}


def test_previews_and_updates_run_the_policy_pack_with_the_stack_config():
    args = deploy.policy_args("staging")
    assert args["policy_packs"] == [str(ROOT / "policies")]
    assert args["policy_pack_configs"] == [str(ROOT / "policies" / "config" / "staging.json")]


def test_outputs_without_pulumi_or_local_state_say_what_to_do(tmp_path, monkeypatch):
    from redisops import outputs

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("BIZOSAAS_LOCAL_STATE", str(tmp_path))
    with pytest.raises(outputs.OutputsError, match=r"Pulumi CLI is not installed.*scripts/local-deploy up --stack dev"):
        outputs.load("dev")
