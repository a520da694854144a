"""bizosaas-redis: every subcommand has help, and bad input is one line naming what is wrong."""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from bizosaas_redis_ops.deploy.sandbox import Project, Sandbox, parse_assignments
from conftest import CLI

SUBCOMMANDS = [
    "preview", "up", "destroy", "outputs", "doctor", "verify", "smoke", "monitor",
    "benchmark", "backup", "restore", "layout-move", "alert-rules", "dashboard", "docs", "offline-image",
]  # fmt: skip


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CLI), *args], capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL
    )


def test_alert_rules_print_the_scrape_jobs_the_rules_select():
    result = run("alert-rules", "--stack", "production", "--scrape-config")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == {
        "scrape_configs": [
            {"job_name": "bizosaas-redis-production", "static_configs": [{"targets": ["127.0.0.1:9121"]}]},
            {"job_name": "bizosaas-redis-production-durable", "static_configs": [{"targets": ["127.0.0.1:9131"]}]},
        ]
    }
    refused = run("alert-rules", "--stack", "dev", "--scrape-config")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "bizosaas-redis alert-rules: stack dev: exporterEnabled is false, nothing to scrape"
    )


def test_help_lists_every_subcommand_and_each_has_its_own():
    listed = run("--help").stdout
    for name in SUBCOMMANDS:
        assert f"\n  {name} " in listed, name
        result = run(name, "--help")
        assert result.returncode == 0 and result.stdout.startswith(f"Usage: bizosaas-redis {name} "), name
    assert "\n  local " not in listed, "one way to deploy: bizosaas-redis up (pulumi up)"


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (
            ["monitor", "--url", "localhost:6379"],
            2,
            "bizosaas-redis monitor: --url has no scheme: want redis[s]://[user:password@]host:port[/db]",
        ),
        (
            ["smoke", "--url", "http://cache:6379/0"],
            2,
            "bizosaas-redis smoke: --url has scheme http://: want redis[s]://[user:password@]host:port[/db]",
        ),
        (
            ["smoke", "--url", "redis://127.0.0.1:6379/cache"],
            2,
            "bizosaas-redis smoke: --url database 'cache': want a number, e.g. redis://host:6379/0",
        ),
        (
            ["smoke", "--url", "redis://127.0.0.1:99999/0"],
            2,
            "bizosaas-redis smoke: --url port: want a number from 1 to 65535",
        ),
        (
            ["restore", "--stack", "dev", "pyproject.toml"],
            1,
            "bizosaas-redis restore: pyproject.toml.sha256 is missing: cannot tell whether pyproject.toml is intact",
        ),
        (
            ["monitor", "--url", "redis://127.0.0.1:1/0"],
            2,
            "bizosaas-redis monitor: cannot connect to 127.0.0.1:1: connection refused; "
            "is the container running and the port published?",
        ),
        (
            ["smoke", "--url", "rediss://127.0.0.1:1/0"],
            2,
            "bizosaas-redis smoke: cannot connect to 127.0.0.1:1: connection refused; "
            "is the container running and the port published?",
        ),
    ],
)
def test_bad_input_is_one_line(args, code, line):
    result = run(*args, env={**os.environ, "PULUMI_CONFIG_PASSPHRASE": "x"})
    assert result.returncode == code
    assert result.stderr.splitlines()[0] == line
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["smoke", "--only", "nosuch", "--url", "redis://127.0.0.1:1/0"],
            "Error: Invalid value for --only: no scenario nosuch; known:",
        ),
        (["alert-rules"], "Error: give exactly one of --stack and --all"),
        (["verify"], "Error: give exactly one of --stack and --container"),
        (["smoke", "--stack", "dev", "--broker-db", "3"], "Error: --broker-db and --result-db go with --url"),
        (["monitor"], "Error: give --stack, or --url / REDIS_URL"),
        (["backup", "--stack", "dev", "--keep", "0"], "Error: Invalid value for '--keep': 0 is not in the range x>=1."),
        (["outputs", "--stack", "dev", "--outputs-source", "local"], "Error: No such option '--outputs-source'."),
        (["monitor", "--url", "redis://h/0", "--interval", "0"], "Error: Invalid value for '--interval': 0.0 is not"),
        (["monitor", "--url", "redis://h/0", "--watch", "0.1"], "Error: Invalid value for '--watch': 0.1 is not"),
        (["benchmark", "smoke", "--stack", "dev", "--runs", "0"], "Error: Invalid value for '--runs': 0 is not in"),
        (["benchmark", "growth", "--sizes", "100,big"], "Error: Invalid value for '--sizes': '100,big': give sizes"),
        (["benchmark", "paths", "--requests", "4999"], "Error: Invalid value for '--requests': 4999 is not in the"),
        (["smoke", "--url", "redis://h/0", "--broker-db", "-1"], "Error: Invalid value for '--broker-db': -1 is not"),
        (["smoke", "--url", "redis://h/0", "--tls-ca", "/no/such/ca.crt"], "Error: Invalid value for '--tls-ca': File"),
        (["smoke", "--stack", "dev", "--url", "redis://h/0"], "Error: give --stack or --url, not both"),
        (["restore", "--stack", "dev", "/no/such.rdb"], "Error: Invalid value for 'FILE': File '/no/such.rdb' does"),
        (["restore", "--stack", "dev", "/tmp"], "Error: Invalid value for 'FILE': File '/tmp' is a directory."),
        (["restore", "--stack", "dev"], "Error: Missing argument 'FILE'."),
        (["alert-rules", "--stack", "dev", "--all"], "Error: give exactly one of --stack and --all"),
        (["verify", "--stack", "dev", "--container", "x"], "Error: give exactly one of --stack and --container"),
        (["docs", "--bogus"], "Error: No such option '--bogus'."),
        (["local", "up", "--stack", "dev"], "Error: No such command 'local'."),
    ],
)
def test_usage_errors_name_the_argument(args, message):
    result = run(*args, env={k: v for k, v in os.environ.items() if k != "REDIS_URL"})
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and errors[0].startswith(message), result.stderr


SETTING_ERRORS = [
    ("save=notalist", 'redis:save = "notalist": must be a valid list'),
    ("hostPort=abc", 'redis:hostPort = "abc": '),
    ("maxmemry=1gb", "redis:maxmemry: unknown setting; did you mean redis:maxmemory?"),
    ("authEnabled=maybe", 'redis:authEnabled = "maybe": '),
    ("memoryLimit=300mb", 'redis:memoryLimit = "300mb": must be at least 2.0 × maxmemory and maxmemory + 64mb (512mb)'),
    ("appendfsync=sometimes", 'redis:appendfsync = "sometimes": must be'),
    ("celeryResultDb=1", "redis:celeryResultDb = 1: must differ from celeryBrokerDb"),
    ("tlsEnabled=true", "redis:tlsCertsDir = null: is required when tlsEnabled is true"),
]


@pytest.mark.parametrize(("assignment", "problem"), SETTING_ERRORS, ids=[a for a, _ in SETTING_ERRORS])
def test_a_bad_setting_names_itself_before_anything_is_deployed(assignment, problem, tmp_path):
    """The dev stack file with one bad setting, in a project folder of its own: `up` says
    what is wrong in one line per problem before Pulumi runs (no state is made)."""
    sandbox = Sandbox("dev", parse_assignments([assignment]), Project(folder=tmp_path))
    sandbox.write()
    result = run("up", "--stack", "dev", "--no-verify", env={**os.environ, **sandbox.env()})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0] == "bizosaas-redis up: Pulumi.dev.yaml: 1 invalid setting(s):"
    assert lines[1].startswith(f"  - {problem}"), lines[1]
    assert not (tmp_path / ".pulumi-state").exists() or not any((tmp_path / ".pulumi-state").iterdir())


def test_the_stand_ins_offered_are_the_ones_the_builder_builds():
    from bizosaas_redis_ops.images import STAND_INS, offline_image

    assert tuple(offline_image.SERVERS) == STAND_INS
