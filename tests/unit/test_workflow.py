"""The example CI pipeline is a valid GitHub workflow and does what the README says."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from bizosaas_redis_ops import docs
from conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "redis-infra.yml"


def validate(path: Path) -> subprocess.CompletedProcess:
    # check-jsonschema ships GitHub's workflow schema: no network needed.
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
    )


def test_workflow_matches_the_github_schema():
    result = validate(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_catches_a_broken_workflow(tmp_path):
    broken = yaml.safe_load(WORKFLOW.read_text())
    broken["jobs"]["test"]["runs-on"] = {"group": 5, "labels": [{"not": "a label"}]}
    broken["jobs"]["test"]["timeout-minutes"] = "soon"
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    result = validate(path)
    # The tool's own verdict, not just a non-zero exit (a missing tool exits non-zero too).
    assert result.returncode == 1
    assert "Schema validation errors were encountered." in result.stdout
    assert "['runs-on'].labels[0]: {'not': 'a label'} is not of type 'string'" in result.stdout


def test_pipeline_previews_with_the_policy_pack_and_verifies_after_up():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    test_steps = " ".join(str(step.get("run", "")) for step in jobs["test"]["steps"])
    assert "scripts/test" in test_steps
    preview = next(s for s in jobs["preview"]["steps"] if s.get("uses", "").startswith("pulumi/actions"))
    assert preview["with"]["command"] == "preview" and preview["with"]["policyPacks"] == "policies"
    assert preview["with"]["comment-on-pr"] is True
    assert jobs["preview"]["strategy"]["matrix"]["stack"] == ["dev", "staging", "production"]
    deploy_runs = " ".join(str(step.get("run", "")) for step in jobs["deploy"]["steps"])
    assert "bizosaas-redis up" in deploy_runs and "--no-verify" not in deploy_runs
    assert "bizosaas-redis smoke" in deploy_runs and "--junit" in deploy_runs
    assert jobs["deploy"]["strategy"]["matrix"]["stack"] == ["staging", "production"]


def test_every_pull_request_runs_the_fast_tier_then_the_whole_suite_with_room_from_the_lock():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    runs = {name: " ".join(str(step.get("run", "")) for step in job["steps"]) for name, job in jobs.items()}
    assert "scripts/test --fast" in runs["fast"] and jobs["test"]["needs"] == "fast"
    # YAML 1.1 reads the key `on` as True.
    paths = workflow[True]["pull_request"]["paths"]
    assert {"README.md", "docs/**", "uv.lock", "pyproject.toml"} <= set(paths)
    assert "scripts/uv sync --locked" in runs["preview"] and "pip install" not in " ".join(runs.values())
    measured = docs.whole_suite_seconds(ROOT) / 60
    assert jobs["test"]["timeout-minutes"] >= 1.25 * measured, f"the whole suite took up to {measured:.0f} min"


def test_the_measured_suite_is_every_tier():
    # The timeout above is the sum of the tiers measured: a tier missing from the results
    # file would make the whole suite look shorter than it is.
    loader = importlib.machinery.SourceFileLoader("measure_tests", str(ROOT / "scripts" / "measure-tests"))
    spec = importlib.util.spec_from_loader(loader.name, loader)
    assert spec is not None
    measure_tests = importlib.util.module_from_spec(spec)
    loader.exec_module(measure_tests)
    measured = {row["name"] for row in docs.load_results(ROOT, "test-tiers")["figures"]}
    assert set(measure_tests.TIERS) <= measured, f"results/test-tiers.json lacks {set(measure_tests.TIERS) - measured}"


RENOVATE = ROOT / "renovate.json"


def test_renovate_keeps_the_lock_fresh_and_watches_each_stacks_image():
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.renovate", str(RENOVATE)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    config = json.loads(RENOVATE.read_text())
    assert config["lockFileMaintenance"]["enabled"] is True
    [manager] = config["customManagers"]
    # Renovate's regexes are JavaScript's: named groups are (?<name>…), Python's (?P<name>…).
    pattern = re.compile(manager["matchStrings"][0].replace("(?<", "(?P<"))
    files = re.compile(manager["managerFilePatterns"][0].strip("/"))
    for stack_file in sorted(ROOT.glob("Pulumi.*.yaml")):
        image = yaml.safe_load(stack_file.read_text())["config"].get("redis:image")
        if image:
            assert files.match(stack_file.name), stack_file.name
            found = pattern.search(stack_file.read_text())
            assert found and f"{found['depName']}:{found['currentValue']}" == image.split("@")[0]
